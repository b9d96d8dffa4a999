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
    notifyDone(`Tenant ${t.name} ${status === 'suspended' ? 'suspended' : 'resumed'}`);
    tenants.reload();
  };

  return (
    <>
      <PageHeader title="Tenants">
        <Button onClick={() => setCreating(true)}>New tenant</Button>
      </PageHeader>
      <QueryView query={tenants} isEmpty={(d) => d.length === 0} empty="No tenants yet.">
        {(items) => (
          <Table.ScrollContainer minWidth={760}>
            <Table className="data-table" striped highlightOnHover verticalSpacing="sm">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Id</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Cell</Table.Th>
                  <Table.Th>Created</Table.Th>
                  <Table.Th>Actions</Table.Th>
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
                            label="Suspend"
                            color="orange"
                            title="Suspend tenant"
                            message={`Suspend ${t.name}? Its apps refuse logins and REST calls, and its live sessions are kicked.`}
                            confirmLabel="Suspend"
                            onConfirm={() => setStatus(t, 'suspended')}
                          />
                        ) : (
                          <Button
                            size="xs"
                            variant="light"
                            color="green"
                            onClick={() => setStatus(t, 'active').catch(notifyError)}
                          >
                            Resume
                          </Button>
                        )}
                        <Button size="xs" variant="default" onClick={() => setMoving(t)}>
                          Cell…
                        </Button>
                        <ConfirmButton
                          label="Delete"
                          title="Delete tenant"
                          message={`Delete ${t.name} and its accounts? Only a tenant without apps can be deleted.`}
                          confirmLabel="Delete"
                          typeToConfirm={t.name}
                          onConfirm={async () => {
                            await unwrap(
                              api.DELETE('/admin/v1/tenants/{tenant_id}', {
                                params: { path: { tenant_id: t.tenant_id } },
                              }),
                            );
                            notifyDone(`Tenant ${t.name} deleted`);
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
      name: (v) => (!v.trim() ? 'Enter a name' : v.trim().length > 100 ? 'At most 100 characters' : null),
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
      notifyDone(`Tenant ${t.name} created`);
      form.reset();
      onCreated();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Modal opened={opened} onClose={onClose} title="New tenant" centered>
      <form onSubmit={submit} noValidate>
        <Stack>
          <TextInput label="Name" required data-autofocus {...form.getInputProps('name')} />
          <Select
            label="Cell"
            data={cells.length ? cells : [{ value: 'default', label: 'default' }]}
            allowDeselect={false}
            {...form.getInputProps('cell_id')}
          />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={busy}>
              Create
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
      notifyDone(`${tenant.name} moved to cell ${cell}`);
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
      title={`Assign ${tenant?.name ?? ''} to a cell`}
      centered
    >
      <Stack>
        <Select
          label="Cell"
          data={cells}
          value={cell ?? current}
          onChange={setCell}
          allowDeselect={false}
          description="Moves the tenant's config at once; stored messages are not migrated."
          data-autofocus
        />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button onClick={submit} loading={busy} disabled={!cell || cell === current}>
            Assign
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
