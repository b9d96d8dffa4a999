import { useState } from 'react';
import { Badge, Button, Code, Group, Paper, Stack, Table, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useForm } from '@mantine/form';
import { useSearchParams } from 'react-router';
import { api, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, QueryView, When, notifyDone, notifyError } from '../components/common';
import { tr } from '../i18n';

type Message = Schemas['SupportMessage'];

/** A search box whose value lives in the URL (`?<param>=`), so lookups can be bookmarked. */
export function Lookup({
  param,
  label,
  placeholder,
  check,
  normalise = (v) => v,
}: {
  param: string;
  label: string;
  placeholder: string;
  check: (v: string) => string | null;
  normalise?: (v: string) => string;
}) {
  const [params, setParams] = useSearchParams();
  const form = useForm({ initialValues: { q: params.get(param) ?? '' }, validate: { q: (v) => check(v.trim()) } });
  return (
    <form
      onSubmit={form.onSubmit((v) => {
        const next = new URLSearchParams(params);
        next.set(param, normalise(v.q.trim()));
        setParams(next);
      })}
      noValidate
    >
      <Group align="flex-start" gap="xs" mb="md">
        <TextInput label={label} placeholder={placeholder} style={{ flex: 1, minWidth: 200 }} {...form.getInputProps('q')} />
        <Button type="submit" mt={25}>
          {tr('Look up')}
        </Button>
      </Group>
    </form>
  );
}

const userCheck = (v: string) => (v.length === 0 ? tr('Enter a user id') : v.length > 128 ? tr('At most 128 characters') : null);
/** `p2p:<b>:<a>` → `p2p:<a>:<b>`: the API names a pair's conversation with its ids sorted. */
export function normaliseConv(v: string): string {
  const m = /^p2p:([^:]+):([^:]+)$/.exec(v);
  if (!m) return v;
  const [a, b] = [m[1], m[2]].sort();
  return `p2p:${a}:${b}`;
}

const convCheck = (v: string) =>
  /^(p2p:[^:]+:[^:]+|group:.+|room:.+)$/.test(v) ? null : tr('A conversation id: p2p:<user>:<user> or group:<id>');

function SystemMessageForm({ appId, userId }: { appId: string; userId: string }) {
  const form = useForm({
    initialValues: { text: '' },
    validate: { text: (v) => (!v.trim() ? tr('Write a message') : v.trim().length > 4000 ? tr('At most 4000 characters') : null) },
  });
  const [busy, setBusy] = useState(false);
  return (
    <form
      noValidate
      onSubmit={form.onSubmit(async (v) => {
        setBusy(true);
        try {
          const sent = await unwrap(
            api.POST('/admin/v1/apps/{app_id}/support/users/{user_id}/messages', {
              params: { path: { app_id: appId, user_id: userId } },
              body: { text: v.text.trim() },
            }),
          );
          notifyDone(tr('Message sent ({conv} #{seq})', { conv: sent.conv_id, seq: sent.seq }));
          form.reset();
        } catch (e) {
          notifyError(e);
        } finally {
          setBusy(false);
        }
      })}
    >
      <Stack gap="xs">
        <Textarea label={tr('System message to {user}', { user: userId })} autosize minRows={2} {...form.getInputProps('text')} />
        <Group justify="flex-end">
          <Button type="submit" loading={busy}>
            {tr('Send')}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

function UserPanel({ appId, userId }: { appId: string; userId: string }) {
  const devices = useQuery(
    () =>
      unwrap(
        api.GET('/admin/v1/apps/{app_id}/support/users/{user_id}/devices', {
          params: { path: { app_id: appId, user_id: userId } },
        }),
      ),
    [appId, userId],
  );
  return (
    <Stack>
      <Group justify="space-between" wrap="wrap">
        <Title order={3}>
          {tr('User')} <Code>{userId}</Code>
        </Title>
        <ConfirmButton
          label={tr('Revoke tokens and kick')}
          title={tr('Revoke tokens and kick')}
          message={tr("Every token of {user} stops working and its live sessions are closed. The user's app must get a new token from your backend.", { user: userId })}
          confirmLabel={tr('Revoke')}
          onConfirm={async () => {
            await unwrap(
              api.POST('/admin/v1/apps/{app_id}/support/users/{user_id}/revoke', {
                params: { path: { app_id: appId, user_id: userId } },
              }),
            );
            notifyDone(tr('Tokens of {user} revoked', { user: userId }));
            devices.reload();
          }}
        />
      </Group>
      <QueryView query={devices} isEmpty={(d) => d.items.length === 0} empty={tr('No device is online or registered for push.')}>
        {(d) => (
          <Table.ScrollContainer minWidth={480}>
            <Table aria-label={tr('Devices')}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('Device')}</Table.Th>
                  <Table.Th>{tr('Status')}</Table.Th>
                  <Table.Th>{tr('Platform')}</Table.Th>
                  <Table.Th>{tr('Push')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {d.items.map((dev) => (
                  <Table.Tr key={dev.device_id}>
                    <Table.Td>
                      <Code>{dev.device_id}</Code>
                    </Table.Td>
                    <Table.Td>
                      <Badge color={dev.online ? 'green' : 'gray'} variant="light">
                        {dev.online ? tr('online') : tr('offline')}
                      </Badge>
                    </Table.Td>
                    <Table.Td>{dev.platform ?? '—'}</Table.Td>
                    <Table.Td>{dev.push ? String((dev.push as { vendor?: string }).vendor ?? '✓') : '—'}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryView>
      <Paper withBorder p="md">
        <SystemMessageForm appId={appId} userId={userId} />
      </Paper>
    </Stack>
  );
}

/** A tenant admin's user lookup: online devices, revoke tokens (kick), a system message. */
export function UsersTab({ appId }: { appId: string }) {
  const [params] = useSearchParams();
  const user = params.get('user')?.trim();
  return (
    <>
      <Lookup param="user" label={tr('User id')} placeholder="alice" check={userCheck} />
      {user ? (
        <UserPanel key={user} appId={appId} userId={user} />
      ) : (
        <Text c="dimmed">{tr('Look up a user by id to see its devices, revoke its tokens or send it a system message.')}</Text>
      )}
    </>
  );
}

function bodyText(m: Message): string {
  const b = m.body as { type?: string; text?: string };
  if (m.recalled) return tr('(recalled)');
  if (b.type === 'text' && typeof b.text === 'string') return b.text;
  return JSON.stringify(m.body);
}

function History({ appId, convId }: { appId: string; convId: string }) {
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages[pages.length - 1];
  const page = useQuery(
    () =>
      unwrap(
        api.GET('/admin/v1/apps/{app_id}/support/conversations/{conv_id}/messages', {
          params: { path: { app_id: appId, conv_id: convId }, query: { limit: 50, ...(cursor ? { cursor } : {}) } },
        }),
      ),
    [appId, convId, cursor],
  );
  return (
    <QueryView query={page} isEmpty={(p) => p.items.length === 0} empty={tr('No messages.')}>
      {(p) => (
        <>
          <Table.ScrollContainer minWidth={560}>
            <Table aria-label={tr('Messages')} verticalSpacing="xs">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>#</Table.Th>
                  <Table.Th>{tr('From')}</Table.Th>
                  <Table.Th>{tr('Message')}</Table.Th>
                  <Table.Th>{tr('Sent')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {p.items.map((m) => (
                  <Table.Tr key={m.msg_id} data-testid={`message-${m.seq}`}>
                    <Table.Td>{m.seq}</Table.Td>
                    <Table.Td>
                      <Code>{m.from}</Code>
                    </Table.Td>
                    <Table.Td style={{ overflowWrap: 'anywhere' }}>
                      <Text size="sm" c={m.recalled ? 'dimmed' : undefined}>
                        {bodyText(m)}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      <When at={m.ts} />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          <Group justify="space-between" mt="sm">
            <Button variant="default" size="xs" disabled={pages.length === 0} onClick={() => setPages((x) => x.slice(0, -1))}>
              {tr('Newer')}
            </Button>
            <Button
              variant="default"
              size="xs"
              disabled={!p.next_cursor}
              onClick={() => p.next_cursor && setPages((x) => [...x, p.next_cursor!])}
            >
              {tr('Older')}
            </Button>
          </Group>
        </>
      )}
    </QueryView>
  );
}

/** A tenant admin's conversation lookup: the history of a conversation by id. */
export function ConversationsTab({ appId }: { appId: string }) {
  const [params] = useSearchParams();
  const conv = params.get('conv')?.trim();
  return (
    <>
      <Lookup param="conv" label={tr('Conversation id')} placeholder="p2p:alice:bob" check={convCheck} normalise={normaliseConv} />
      {conv ? (
        <History key={conv} appId={appId} convId={conv} />
      ) : (
        <Text c="dimmed">{tr('Look up a conversation by id (p2p:<user>:<user>, users in any order, or group:<id>) to read its history.')}</Text>
      )}
    </>
  );
}
