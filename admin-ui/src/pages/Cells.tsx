import { useState } from 'react';
import { Button, Code, Group, Modal, Stack, Table, TextInput } from '@mantine/core';
import { useForm } from '@mantine/form';
import { api, idempotencyKey, unwrap } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, PageHeader, QueryView, When, notifyDone, notifyError } from '../components/common';
import { listCells, listTenants } from './Tenants';
import { tr } from '../i18n';

export const CELL_RE = /^[A-Za-z0-9._-]{1,40}$/;

export function Cells() {
  const cells = useQuery(listCells, []);
  const tenants = useQuery(listTenants, []);
  const [creating, setCreating] = useState(false);
  const served = (cell: string) => (tenants.data ?? []).filter((t) => t.cell_id === cell).length;

  return (
    <>
      <PageHeader title={tr('Cells')}>
        <Button onClick={() => setCreating(true)}>{tr('New cell')}</Button>
      </PageHeader>
      <QueryView query={cells} isEmpty={(d) => d.length === 0}>
        {(items) => (
          <Table.ScrollContainer minWidth={560}>
            <Table className="data-table" striped verticalSpacing="sm" aria-label={tr('Cells')}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('Cell')}</Table.Th>
                  <Table.Th>{tr('Description')}</Table.Th>
                  <Table.Th>{tr('Tenants')}</Table.Th>
                  <Table.Th>{tr('Created')}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((c) => (
                  <Table.Tr key={c.cell_id}>
                    <Table.Td>
                      <Code>{c.cell_id}</Code>
                    </Table.Td>
                    <Table.Td>{c.description || '—'}</Table.Td>
                    <Table.Td>{tenants.data ? served(c.cell_id) : '…'}</Table.Td>
                    <Table.Td>
                      <When at={c.created_at} />
                    </Table.Td>
                    <Table.Td>
                      {c.cell_id !== 'default' && (
                        <ConfirmButton
                          label={tr('Delete')}
                          title={tr('Delete cell')}
                          message={tr('Delete cell {cell}? Only a cell that serves no tenant can be deleted.', { cell: c.cell_id })}
                          confirmLabel={tr('Delete')}
                          onConfirm={async () => {
                            await unwrap(api.DELETE('/admin/v1/cells/{cell_id}', { params: { path: { cell_id: c.cell_id } } }));
                            notifyDone(tr('Cell {cell} deleted', { cell: c.cell_id }));
                            cells.reload();
                          }}
                        />
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryView>
      <CreateCell
        opened={creating}
        onClose={() => setCreating(false)}
        onCreated={() => {
          setCreating(false);
          cells.reload();
        }}
      />
    </>
  );
}

function CreateCell({ opened, onClose, onCreated }: { opened: boolean; onClose: () => void; onCreated: () => void }) {
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { cell_id: '', description: '' },
    validate: { cell_id: (v) => (CELL_RE.test(v) ? null : tr('1 to 40 of letters, digits, “.”, “_”, “-”')) },
  });
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      await unwrap(
        api.POST('/admin/v1/cells', { body: v, headers: { 'Idempotency-Key': idempotencyKey() } }),
      );
      notifyDone(tr('Cell {cell} created', { cell: v.cell_id }));
      form.reset();
      onCreated();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Modal opened={opened} onClose={onClose} title={tr('New cell')} centered>
      <form onSubmit={submit} noValidate>
        <Stack>
          <TextInput label={tr('Cell id')} placeholder={tr('cn-east-1')} required data-autofocus {...form.getInputProps('cell_id')} />
          <TextInput label={tr('Description')} {...form.getInputProps('description')} />
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
