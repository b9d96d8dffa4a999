import { useState } from 'react';
import { Alert, Button, Group, Stack, Table, Text } from '@mantine/core';
import { allPages, api, idempotencyKey, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, IdText, QueryView, SecretModal, StatusBadge, When, notifyDone, notifyError } from '../components/common';
import { tr } from '../i18n';

export function KeysTab({ appId }: { appId: string }) {
  const keys = useQuery(
    () =>
      allPages((cursor) =>
        unwrap(
          api.GET('/admin/v1/apps/{app_id}/keys', { params: { path: { app_id: appId }, query: { limit: 200, cursor } } }),
        ),
      ),
    [appId],
  );
  const [created, setCreated] = useState<Schemas['CreatedKey'] | null>(null);
  const [busy, setBusy] = useState(false);
  const active = (keys.data ?? []).filter((k) => k.status === 'active').length;

  const create = async () => {
    setBusy(true);
    try {
      const k = await unwrap(
        api.POST('/admin/v1/apps/{app_id}/keys', {
          params: { path: { app_id: appId } },
          headers: { 'Idempotency-Key': idempotencyKey() },
        }),
      );
      setCreated(k);
      keys.reload();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack>
      <Alert variant="light" color="blue">
        {tr("Rotation: create a new key, move your backend's signers to it, then revoke the old one. An app has at most two active keys.")}
      </Alert>
      <Group>
        <Button onClick={create} loading={busy} disabled={keys.data !== undefined && active >= 2}>
          {active >= 1 ? tr('Rotate: create a new key') : tr('Create key')}
        </Button>
        {active >= 2 && (
          <Text size="sm" c="dimmed">
            {tr('Revoke a key before creating another.')}
          </Text>
        )}
      </Group>
      <QueryView query={keys} isEmpty={(d) => d.length === 0} empty={tr('No keys.')}>
        {(items) => (
          <Table.ScrollContainer minWidth={640}>
            <Table className="data-table" striped verticalSpacing="sm" aria-label={tr('Keys')}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('Key id')}</Table.Th>
                  <Table.Th>{tr('Status')}</Table.Th>
                  <Table.Th>{tr('Created')}</Table.Th>
                  <Table.Th>{tr('Revoked')}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((k) => (
                  <Table.Tr key={k.key_id} data-testid={`key-row-${k.key_id}`}>
                    <Table.Td>
                      <IdText id={k.key_id} />
                    </Table.Td>
                    <Table.Td>
                      <StatusBadge status={k.status} />
                    </Table.Td>
                    <Table.Td>
                      <When at={k.created_at} />
                    </Table.Td>
                    <Table.Td>
                      <When at={k.revoked_at} />
                    </Table.Td>
                    <Table.Td>
                      {k.status === 'active' && (
                        <ConfirmButton
                          label={tr('Revoke')}
                          aria-label={tr('Revoke {key}', { key: k.key_id })}
                          title={tr('Revoke key')}
                          message={tr('Revoke {key}? User tokens it signed and server calls with its secret stop working within seconds.', { key: k.key_id })}
                          confirmLabel={tr('Revoke')}
                          onConfirm={async () => {
                            await unwrap(
                              api.POST('/admin/v1/apps/{app_id}/keys/{key_id}/revoke', {
                                params: { path: { app_id: appId, key_id: k.key_id } },
                              }),
                            );
                            notifyDone(tr('Key {key} revoked', { key: k.key_id }));
                            keys.reload();
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
      <SecretModal
        secret={created?.secret ?? null}
        title={tr('New key created')}
        details={
          created && (
            <Group gap="xs">
              <Text size="sm" c="dimmed">
                {tr('Key id')}
              </Text>
              <IdText id={created.key_id} />
            </Group>
          )
        }
        onClose={() => setCreated(null)}
      />
    </Stack>
  );
}
