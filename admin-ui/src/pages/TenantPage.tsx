import { useState } from 'react';
import { Anchor, Breadcrumbs, Button, Code, Group, Modal, Stack, Table, Text, TextInput } from '@mantine/core';
import { useForm } from '@mantine/form';
import { Link, useParams } from 'react-router';
import { allPages, api, idempotencyKey, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { isOperator, useAccount } from '../auth';
import { IdText, PageHeader, QueryView, SecretModal, StatusBadge, When, notifyError } from '../components/common';
import { tr } from '../i18n';

export function TenantPage() {
  const { tenantId = '' } = useParams();
  const account = useAccount();
  const tenant = useQuery(
    () => unwrap(api.GET('/admin/v1/tenants/{tenant_id}', { params: { path: { tenant_id: tenantId } } })),
    [tenantId],
  );
  const apps = useQuery(
    () =>
      allPages((cursor) =>
        unwrap(api.GET('/admin/v1/apps', { params: { query: { tenant_id: tenantId, limit: 200, cursor } } })),
      ),
    [tenantId],
  );
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Schemas['CreatedApp'] | null>(null);

  return (
    <QueryView query={tenant}>
      {(t) => (
        <>
          {isOperator(account) && (
            <Breadcrumbs mb="xs">
              <Anchor component={Link} to="/tenants">
                {tr('Tenants')}
              </Anchor>
              <Text>{t.name}</Text>
            </Breadcrumbs>
          )}
          <PageHeader
            title={
              <>
                {t.name} <StatusBadge status={t.status} />
              </>
            }
          >
            <Button onClick={() => setCreating(true)}>{tr('New app')}</Button>
          </PageHeader>
          <Group gap="lg" mb="md" wrap="wrap">
            <Group gap={4}>
              <Text size="sm" c="dimmed">
                {tr('Tenant id')}
              </Text>
              <IdText id={t.tenant_id} />
            </Group>
            <Text size="sm">
              <Text span c="dimmed">
                {tr('Cell')}
              </Text>{' '}
              <Code>{t.cell_id}</Code>
            </Text>
          </Group>
          <QueryView query={apps} isEmpty={(d) => d.length === 0} empty={tr('No apps yet: create one to get an app id and a secret key.')}>
            {(items) => (
              <Table.ScrollContainer minWidth={600}>
                <Table className="data-table" striped highlightOnHover verticalSpacing="sm" aria-label={tr('Apps')}>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>{tr('Name')}</Table.Th>
                      <Table.Th>{tr('App id')}</Table.Th>
                      <Table.Th>{tr('Status')}</Table.Th>
                      <Table.Th>{tr('Created')}</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {items.map((a) => (
                      <Table.Tr key={a.app_id}>
                        <Table.Td>
                          <Anchor component={Link} to={`/apps/${a.app_id}`}>
                            {a.name}
                          </Anchor>
                        </Table.Td>
                        <Table.Td>
                          <IdText id={a.app_id} />
                        </Table.Td>
                        <Table.Td>
                          <StatusBadge status={a.status} />
                        </Table.Td>
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
          <CreateApp
            opened={creating}
            tenantId={t.tenant_id}
            onClose={() => setCreating(false)}
            onCreated={(c) => {
              setCreating(false);
              setCreated(c);
              apps.reload();
            }}
          />
          <SecretModal
            secret={created?.secret ?? null}
            title={tr('App created')}
            details={
              created && (
                <Stack gap={4}>
                  <Group gap="xs">
                    <Text size="sm" c="dimmed" w={60}>
                      {tr('App id')}
                    </Text>
                    <IdText id={created.app_id} />
                  </Group>
                  <Group gap="xs">
                    <Text size="sm" c="dimmed" w={60}>
                      {tr('Key id')}
                    </Text>
                    <IdText id={created.key_id} />
                  </Group>
                </Stack>
              )
            }
            onClose={() => setCreated(null)}
          />
        </>
      )}
    </QueryView>
  );
}

function CreateApp({
  opened,
  tenantId,
  onClose,
  onCreated,
}: {
  opened: boolean;
  tenantId: string;
  onClose: () => void;
  onCreated: (c: Schemas['CreatedApp']) => void;
}) {
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { name: '' },
    validate: {
      name: (v) => (!v.trim() ? tr('Enter a name') : v.trim().length > 100 ? tr('At most 100 characters') : null),
    },
  });
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      const c = await unwrap(
        api.POST('/admin/v1/apps', {
          body: { tenant_id: tenantId, name: v.name.trim() },
          headers: { 'Idempotency-Key': idempotencyKey() },
        }),
      );
      form.reset();
      onCreated(c);
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Modal opened={opened} onClose={onClose} title={tr('New app')} centered>
      <form onSubmit={submit} noValidate>
        <Stack>
          <TextInput label={tr('Name')} required data-autofocus {...form.getInputProps('name')} />
          <Text size="xs" c="dimmed">
            {tr('The app gets default settings and quotas and its first secret key, shown once.')}
          </Text>
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
