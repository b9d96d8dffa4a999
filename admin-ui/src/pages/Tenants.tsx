import { useState } from 'react';
import { Anchor, Button, Group, Modal, Select, Stack, Table, TextInput } from '@mantine/core';
import { useForm } from '@mantine/form';
import { Link } from 'react-router';
import { allPages, api, idempotencyKey, unwrap, type Tenant } from '../api/client';
import { useQuery } from '../api/useQuery';
import {
  ConfirmButton,
  IdText,
  PageHeader,
  QueryView,
  StatusBadge,
  When,
  notifyDone,
  notifyError,
} from '../components/common';
import { tr } from '../i18n';

export const listTenants = () =>
  allPages((cursor) => unwrap(api.GET('/admin/v1/tenants', { params: { query: { limit: 200, cursor } } })));
export const listCells = () =>
  allPages((cursor) => unwrap(api.GET('/admin/v1/cells', { params: { query: { limit: 200, cursor } } })));

export function Tenants() {
  const tenants = useQuery(listTenants, []);
  const cells = useQuery(listCells, []);
  const [creating, setCreating] = useState(false);
  const [moving, setMoving] = useState<Tenant | null>(null);
  const cellOptions = (cells.data ?? []).map((c) => ({ value: c.cell_id, label: c.cell_id }));

  const setStatus = async (t: Tenant, status: 'active' | 'suspended') => {
    const path = status === 'suspended' ? '/admin/v1/tenants/{tenant_id}/suspend' : '/admin/v1/tenants/{tenant_id}/resume';
    await unwrap(api.POST(path, { params: { path: { tenant_id: t.tenant_id } } }));
    notifyDone(tr(status === 'suspended' ? 'Tenant {name} suspended' : 'Tenant {name} resumed', { name: t.name }));
    tenants.reload();
  };

  return (
    <>
      <PageHeader title={tr('Tenants')}>
        <Button onClick={() => setCreating(true)}>{tr('New tenant')}</Button>
      </PageHeader>
      <QueryView query={tenants} isEmpty={(d) => d.length === 0} empty={tr('No tenants yet.')}>
        {(items) => (
          <Table.ScrollContainer minWidth={760}>
            <Table className="data-table" striped highlightOnHover verticalSpacing="sm">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('Name')}</Table.Th>
                  <Table.Th>{tr('Id')}</Table.Th>
                  <Table.Th>{tr('Status')}</Table.Th>
                  <Table.Th>{tr('Cell')}</Table.Th>
                  <Table.Th>{tr('Created')}</Table.Th>
                  <Table.Th>{tr('Actions')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((t) => (
                  <Table.Tr key={t.tenant_id} data-testid={`tenant-row-${t.name}`}>
                    <Table.Td>
                      <Anchor component={Link} to={`/tenants/${t.tenant_id}`}>
                        {t.name}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>
                      <IdText id={t.tenant_id} />
                    </Table.Td>
                    <Table.Td>
                      <StatusBadge status={t.status} />
                    </Table.Td>
                    <Table.Td>{t.cell_id}</Table.Td>
                    <Table.Td>
                      <When at={t.created_at} />
                    </Table.Td>
                    <Table.Td>
                      <Group gap={4} wrap="nowrap">
                        {t.status === 'active' ? (
                          <ConfirmButton
                            label={tr('Suspend')}
                            color="orange"
                            title={tr('Suspend tenant')}
                            message={tr('Suspend {name}? Its apps refuse logins and REST calls, and its live sessions are kicked.', { name: t.name })}
                            confirmLabel={tr('Suspend')}
                            onConfirm={() => setStatus(t, 'suspended')}
                          />
                        ) : (
                          <Button
                            size="xs"
                            variant="light"
                            color="green"
                            onClick={() => setStatus(t, 'active').catch(notifyError)}
                          >
                            {tr('Resume')}
                          </Button>
                        )}
                        <Button size="xs" variant="default" onClick={() => setMoving(t)}>
                          {tr('Cell…')}
                        </Button>
                        <ConfirmButton
                          label={tr('Delete')}
                          title={tr('Delete tenant')}
                          message={tr('Delete {name} and its accounts? Only a tenant without apps can be deleted.', { name: t.name })}
                          confirmLabel={tr('Delete')}
                          typeToConfirm={t.name}
                          onConfirm={async () => {
                            await unwrap(
                              api.DELETE('/admin/v1/tenants/{tenant_id}', {
                                params: { path: { tenant_id: t.tenant_id } },
                              }),
                            );
                            notifyDone(tr('Tenant {name} deleted', { name: t.name }));
                            tenants.reload();
                          }}
                        />
                      </Group>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryView>
      <CreateTenant
        opened={creating}
        cells={cellOptions}
        onClose={() => setCreating(false)}
        onCreated={() => {
          setCreating(false);
          tenants.reload();
        }}
      />
      <MoveTenant
        tenant={moving}
        cells={cellOptions}
        onClose={() => setMoving(null)}
        onMoved={() => {
          setMoving(null);
          tenants.reload();
        }}
      />
    </>
  );
}

function CreateTenant({
  opened,
  cells,
  onClose,
  onCreated,
}: {
  opened: boolean;
  cells: { value: string; label: string }[];
  onClose: () => void;
  onCreated: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { name: '', cell_id: 'default' },
    validate: {
      name: (v) => (!v.trim() ? tr('Enter a name') : v.trim().length > 100 ? tr('At most 100 characters') : null),
    },
  });
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      const t = await unwrap(
        api.POST('/admin/v1/tenants', {
          body: { name: v.name.trim(), cell_id: v.cell_id || null },
          headers: { 'Idempotency-Key': idempotencyKey() },
        }),
      );
      notifyDone(tr('Tenant {name} created', { name: t.name }));
      form.reset();
      onCreated();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Modal opened={opened} onClose={onClose} title={tr('New tenant')} centered>
      <form onSubmit={submit} noValidate>
        <Stack>
          <TextInput label={tr('Name')} required data-autofocus {...form.getInputProps('name')} />
          <Select
            label={tr('Cell')}
            data={cells.length ? cells : [{ value: 'default', label: 'default' }]}
            allowDeselect={false}
            {...form.getInputProps('cell_id')}
          />
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

function MoveTenant({
  tenant,
  cells,
  onClose,
  onMoved,
}: {
  tenant: Tenant | null;
  cells: { value: string; label: string }[];
  onClose: () => void;
  onMoved: () => void;
}) {
  const [cell, setCell] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const current = tenant?.cell_id ?? null;
  const submit = async () => {
    if (!tenant || !cell || cell === current) return;
    setBusy(true);
    try {
      await unwrap(
        api.PATCH('/admin/v1/tenants/{tenant_id}', {
          params: { path: { tenant_id: tenant.tenant_id } },
          body: { cell_id: cell },
        }),
      );
      notifyDone(tr('{name} moved to cell {cell}', { name: tenant.name, cell }));
      onMoved();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      opened={tenant !== null}
      onClose={() => {
        setCell(null);
        onClose();
      }}
      title={tr('Assign {name} to a cell', { name: tenant?.name ?? '' })}
      centered
    >
      <Stack>
        <Select
          label={tr('Cell')}
          data={cells}
          value={cell ?? current}
          onChange={setCell}
          allowDeselect={false}
          description={tr('Moves the tenant\'s config at once; stored messages are not migrated.')}
          data-autofocus
        />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            {tr('Cancel')}
          </Button>
          <Button onClick={submit} loading={busy} disabled={!cell || cell === current}>
            {tr('Assign')}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
