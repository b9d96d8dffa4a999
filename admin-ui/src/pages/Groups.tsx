import { useState } from 'react';
import { Badge, Button, Code, Group, Modal, NativeSelect, Paper, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useSearchParams } from 'react-router';
import { api, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, QueryView, When, notifyDone, notifyError } from '../components/common';
import { tr } from '../i18n';
import { Lookup } from './Support';

type Member = Schemas['AdminGroupMember'];
type GroupInfo = Schemas['AdminGroup'];

/** Members per page. */
const PAGE = 20;

/** What a member can be muted for, in seconds. */
const DURATIONS: { value: string; label: string }[] = [
  { value: '600', label: '10 minutes' },
  { value: '3600', label: '1 hour' },
  { value: '86400', label: '1 day' },
  { value: '604800', label: '7 days' },
  { value: '2592000', label: '30 days' },
];

/** A group id as the API takes it: 1 to 64 of A-Z a-z 0-9 _ . @ - (a `group:` prefix is dropped). */
export function normaliseGroupId(v: string): string {
  return v.replace(/^group:/, '');
}

export const groupCheck = (v: string) =>
  /^[A-Za-z0-9_.@-]{1,64}$/.test(normaliseGroupId(v)) ? null : tr('A group id: 1 to 64 letters, digits or _ . @ -');

function MuteMemberModal({
  appId,
  groupId,
  member,
  onClose,
  onDone,
}: {
  appId: string;
  groupId: string;
  member: Member | null;
  onClose: () => void;
  onDone: () => void;
}) {
  const [duration, setDuration] = useState(DURATIONS[1].value);
  const [busy, setBusy] = useState(false);
  const mute = async () => {
    if (!member) return;
    setBusy(true);
    try {
      await unwrap(
        api.POST('/admin/v1/apps/{app_id}/groups/{group_id}/members/{user_id}/mute', {
          params: { path: { app_id: appId, group_id: groupId, user_id: member.user_id } },
          body: { duration_s: Number(duration) },
        }),
      );
      notifyDone(tr('{user} muted', { user: member.user_id }));
      onDone();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal opened={!!member} onClose={onClose} title={member ? tr('Mute {user}', { user: member.user_id }) : ''} centered>
      <Stack>
        <Text size="sm">{tr('A muted member cannot send to the group until the mute ends. Members see a group_muted event.')}</Text>
        <NativeSelect
          label={tr('For')}
          value={duration}
          onChange={(e) => setDuration(e.currentTarget.value)}
          data={DURATIONS.map((d) => ({ value: d.value, label: tr(d.label) }))}
          data-autofocus
        />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            {tr('Cancel')}
          </Button>
          <Button color="orange" loading={busy} onClick={mute}>
            {tr('Mute')}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

function Members({ appId, group, tick }: { appId: string; group: GroupInfo; tick: number }) {
  const [pages, setPages] = useState<string[]>([]);
  const [muting, setMuting] = useState<Member | null>(null);
  const [local, setLocal] = useState(0);
  const cursor = pages[pages.length - 1];
  const page = useQuery(
    () =>
      unwrap(
        api.GET('/admin/v1/apps/{app_id}/groups/{group_id}/members', {
          params: { path: { app_id: appId, group_id: group.group_id }, query: { limit: PAGE, ...(cursor ? { cursor } : {}) } },
        }),
      ),
    [appId, group.group_id, cursor, tick, local],
  );
  const unmute = async (m: Member) => {
    try {
      await unwrap(
        api.POST('/admin/v1/apps/{app_id}/groups/{group_id}/members/{user_id}/mute', {
          params: { path: { app_id: appId, group_id: group.group_id, user_id: m.user_id } },
          body: { duration_s: 0 },
        }),
      );
      notifyDone(tr('{user} unmuted', { user: m.user_id }));
      setLocal((x) => x + 1);
    } catch (e) {
      notifyError(e);
    }
  };
  return (
    <Stack gap="xs">
      <Title order={4}>{tr('Members')}</Title>
      <QueryView query={page} isEmpty={(p) => p.items.length === 0} empty={tr('No members.')}>
        {(p) => (
          <>
            <Table.ScrollContainer minWidth={560}>
              <Table className="data-table" striped verticalSpacing="xs" aria-label={tr('Members')}>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{tr('User id')}</Table.Th>
                    <Table.Th>{tr('Role')}</Table.Th>
                    <Table.Th>{tr('Muted until')}</Table.Th>
                    <Table.Th>{tr('Joined')}</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {p.items.map((m) => (
                    <Table.Tr key={m.user_id} data-testid={`member-${m.user_id}`}>
                      <Table.Td>
                        <Code>{m.user_id}</Code>
                      </Table.Td>
                      <Table.Td>{tr(m.role)}</Table.Td>
                      <Table.Td>
                        {m.muted_until ? (
                          <Badge color="orange" variant="light">
                            <When at={m.muted_until} />
                          </Badge>
                        ) : (
                          '—'
                        )}
                      </Table.Td>
                      <Table.Td>
                        <When at={m.joined_at} />
                      </Table.Td>
                      <Table.Td>
                        {m.role !== 'owner' &&
                          (m.muted_until ? (
                            <Button size="compact-sm" variant="light" onClick={() => unmute(m)}
                              aria-label={tr('Unmute {user}', { user: m.user_id })}>
                              {tr('Unmute')}
                            </Button>
                          ) : (
                            <Button size="compact-sm" variant="light" color="orange" onClick={() => setMuting(m)}
                              aria-label={tr('Mute {user}', { user: m.user_id })}>
                              {tr('Mute')}
                            </Button>
                          ))}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
            <Group justify="space-between">
              <Button variant="default" size="xs" disabled={pages.length === 0} onClick={() => setPages((x) => x.slice(0, -1))}>
                {tr('Previous')}
              </Button>
              <Button variant="default" size="xs" disabled={!p.next_cursor}
                onClick={() => p.next_cursor && setPages((x) => [...x, p.next_cursor!])}>
                {tr('Next')}
              </Button>
            </Group>
          </>
        )}
      </QueryView>
      <MuteMemberModal
        appId={appId}
        groupId={group.group_id}
        member={muting}
        onClose={() => setMuting(null)}
        onDone={() => {
          setMuting(null);
          setLocal((x) => x + 1);
        }}
      />
    </Stack>
  );
}

function GroupPanel({ appId, groupId, onDismissed }: { appId: string; groupId: string; onDismissed: () => void }) {
  const group = useQuery(
    () => unwrap(api.GET('/admin/v1/apps/{app_id}/groups/{group_id}', { params: { path: { app_id: appId, group_id: groupId } } })),
    [appId, groupId],
  );
  const [busy, setBusy] = useState(false);
  const muteAll = async (on: boolean) => {
    setBusy(true);
    try {
      await unwrap(
        api.POST('/admin/v1/apps/{app_id}/groups/{group_id}/mute', {
          params: { path: { app_id: appId, group_id: groupId } },
          body: { mute_all: on },
        }),
      );
      notifyDone(on ? tr('Group muted') : tr('Group unmuted'));
      group.reload();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <QueryView query={group}>
      {(g) => (
        <Stack>
          <Group justify="space-between" wrap="wrap">
            <Title order={3}>
              {g.name || tr('Group')} <Code>{g.group_id}</Code>{' '}
              {g.mute_all && (
                <Badge color="orange" variant="light">
                  {tr('all muted')}
                </Badge>
              )}
            </Title>
            <Group gap="xs">
              {g.mute_all ? (
                <Button variant="light" size="xs" loading={busy} onClick={() => muteAll(false)}>
                  {tr('Unmute all')}
                </Button>
              ) : (
                <ConfirmButton
                  label={tr('Mute all')}
                  color="orange"
                  title={tr('Mute all')}
                  message={tr('Only the owner and admins of {group} can send until the group is unmuted.', { group: g.group_id })}
                  confirmLabel={tr('Mute all')}
                  onConfirm={() => muteAll(true)}
                />
              )}
              <ConfirmButton
                label={tr('Dismiss group')}
                title={tr('Dismiss group')}
                message={tr('Dismiss {group}? Every member leaves it and gets a group_dismissed event; its id can never be used again. This cannot be undone.', { group: g.group_id })}
                confirmLabel={tr('Dismiss')}
                typeToConfirm={g.group_id}
                onConfirm={async () => {
                  await unwrap(
                    api.DELETE('/admin/v1/apps/{app_id}/groups/{group_id}', { params: { path: { app_id: appId, group_id: g.group_id } } }),
                  );
                  notifyDone(tr('Group {group} dismissed', { group: g.group_id }));
                  onDismissed();
                }}
              />
            </Group>
          </Group>
          <Paper withBorder p="md">
            <SimpleGrid cols={{ base: 1, sm: 2, md: 4 }}>
              <div>
                <Text size="xs" c="dimmed">{tr('Owner')}</Text>
                <Code>{g.owner}</Code>
              </div>
              <div>
                <Text size="xs" c="dimmed">{tr('Members')}</Text>
                <Text data-testid="group-member-count">{g.member_count}</Text>
              </div>
              <div>
                <Text size="xs" c="dimmed">{tr('Join policy')}</Text>
                <Text>{tr(g.join_policy)}</Text>
              </div>
              <div>
                <Text size="xs" c="dimmed">{tr('Created')}</Text>
                <Text><When at={g.created_at} /></Text>
              </div>
            </SimpleGrid>
            {g.announcement && (
              <Text size="sm" mt="sm" style={{ overflowWrap: 'anywhere' }}>
                {g.announcement}
              </Text>
            )}
          </Paper>
          <Members appId={appId} group={g} tick={g.mute_all ? 1 : 0} />
        </Stack>
      )}
    </QueryView>
  );
}

/** A tenant admin's group lookup: a group by id, its members (mute), mute all, dismiss. */
export function GroupsTab({ appId }: { appId: string }) {
  const [params, setParams] = useSearchParams();
  const groupId = params.get('group')?.trim();
  return (
    <>
      <Lookup param="group" label={tr('Group id')} placeholder="team-42" check={groupCheck} normalise={normaliseGroupId} />
      {groupId ? (
        <GroupPanel
          key={groupId}
          appId={appId}
          groupId={groupId}
          onDismissed={() => {
            const next = new URLSearchParams(params);
            next.delete('group');
            setParams(next);
          }}
        />
      ) : (
        <Text c="dimmed">{tr('Look up a group by id to see its members, mute them or the whole group, or dismiss it.')}</Text>
      )}
    </>
  );
}
