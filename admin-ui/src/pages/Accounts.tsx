import { useState } from 'react';
import { Badge, Button, Group, Modal, PasswordInput, Select, Stack, Table, TextInput } from '@mantine/core';
import { useForm } from '@mantine/form';
import { allPages, api, idempotencyKey, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { isOperator, useAccount } from '../auth';
import { PageHeader, QueryView, When, notifyDone, notifyError } from '../components/common';
import { listTenants } from './Tenants';
import { tr } from '../i18n';

export function validatePassword(v: string): string | null {
  const n = [...v].length;
  return n < 10 ? tr('At least 10 characters') : n > 256 ? tr('At most 256 characters') : null;
}

export function Accounts() {
  const me = useAccount();
  const operator = isOperator(me);
  const accounts = useQuery(
    () => allPages((cursor) => unwrap(api.GET('/admin/v1/accounts', { params: { query: { limit: 200, cursor } } }))),
    [],
  );
  const tenants = useQuery(listTenants, []);
  const [creating, setCreating] = useState(false);
  const tenantName = (id?: string | null) => (tenants.data ?? []).find((t) => t.tenant_id === id)?.name ?? id ?? '—';

  return (
    <>
      <PageHeader title={tr('Accounts')}>
        <Button onClick={() => setCreating(true)}>{tr('New account')}</Button>
      </PageHeader>
      <QueryView query={accounts} isEmpty={(d) => d.length === 0}>
        {(items) => (
          <Table.ScrollContainer minWidth={560}>
            <Table className="data-table" striped verticalSpacing="sm" aria-label={tr('Accounts')}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('User name')}</Table.Th>
                  <Table.Th>{tr('Role')}</Table.Th>
                  <Table.Th>{tr('Tenant')}</Table.Th>
                  <Table.Th>{tr('Created')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((a) => (
                  <Table.Tr key={a.account_id}>
                    <Table.Td>{a.username}</Table.Td>
                    <Table.Td>
                      <Badge variant="light" color={a.role === 'operator' ? 'grape' : 'blue'}>
                        {a.role === 'operator' ? tr('operator') : tr('tenant admin')}
                      </Badge>
                    </Table.Td>
                    <Table.Td>{a.tenant_id ? tenantName(a.tenant_id) : '—'}</Table.Td>
                    <Table.Td>
                      <When at={a.created_at} />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryView>
      {creating && (
        <CreateAccount
          operator={operator}
          tenants={(tenants.data ?? []).map((t) => ({ value: t.tenant_id, label: t.name }))}
          onClose={() => setCreating(false)}
          onCreated={() => {
            setCreating(false);
            accounts.reload();
          }}
        />
      )}
    </>
  );
}

function CreateAccount({
  operator,
  tenants,
  onClose,
  onCreated,
}: {
  operator: boolean;
  tenants: { value: string; label: string }[];
  onClose: () => void;
  onCreated: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: {
      username: '',
      password: '',
      role: 'tenant_admin' as Schemas['Role'],
      tenant_id: null as string | null,
    },
    validate: {
      username: (v) => (!v.trim() ? tr('Enter a user name') : null),
      password: validatePassword,
      tenant_id: (v, values) =>
        operator && values.role === 'tenant_admin' && !v ? tr('Choose the tenant it administers') : null,
    },
  });
  const role = form.getValues().role;
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      await unwrap(
        api.POST('/admin/v1/accounts', {
          body: {
            username: v.username.trim(),
            password: v.password,
            role: v.role,
            tenant_id: operator && v.role === 'tenant_admin' ? v.tenant_id : null,
          },
          headers: { 'Idempotency-Key': idempotencyKey() },
        }),
      );
      notifyDone(tr('Account {name} created', { name: v.username.trim() }));
      onCreated();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Modal opened onClose={onClose} title={tr('New account')} centered>
      <form onSubmit={submit} noValidate>
        <Stack>
          <TextInput label={tr('User name')} required data-autofocus autoComplete="off" {...form.getInputProps('username')} />
          <PasswordInput
            label={tr('Password')}
            description={tr('10 to 256 characters; tell it to its owner')}
            required
            autoComplete="new-password"
            {...form.getInputProps('password')}
          />
          {operator && (
            <Select
              label={tr('Role')}
              data={[
                { value: 'tenant_admin', label: tr('Tenant admin') },
                { value: 'operator', label: tr('Operator') },
              ]}
              allowDeselect={false}
              {...form.getInputProps('role')}
            />
          )}
          {operator && role === 'tenant_admin' && (
            <Select label={tr('Tenant')} data={tenants} searchable required {...form.getInputProps('tenant_id')} />
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {tr('Cancel')}
            </Button>
            <Button type="submit" loading={busy}>
              {tr('Create')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
