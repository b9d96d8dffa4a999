import { useState } from 'react';
import {
  Alert,
  Button,
  Checkbox,
  Code,
  Group,
  NumberInput,
  Paper,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useForm } from '@mantine/form';
import { ApiError, api, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, QueryView, SecretModal, When, notifyDone, notifyError } from '../components/common';
import { tr } from '../i18n';

type Webhook = Schemas['Webhook'];
type EventName = Schemas['WebhookEventName'];
type FailMode = Schemas['WebhookFailMode'];

export const WEBHOOK_EVENTS: { value: EventName; help: string }[] = [
  { value: 'before_send', help: 'Asked before a message is stored: allow, reject or modify it.' },
  { value: 'after_send', help: 'A message was stored.' },
  { value: 'user_online', help: "A user's first device connected." },
  { value: 'user_offline', help: "A user's last device disconnected." },
  { value: 'group_event', help: 'A group was created, changed or dissolved, or its members changed.' },
];

export interface WebhookFormValues {
  url: string;
  events: string[];
  timeout_ms: number | string;
  fail_mode: string;
}

/** The checks the API makes, done before submitting (null: valid). */
export function validateWebhook(v: WebhookFormValues): Partial<Record<keyof WebhookFormValues, string>> {
  const errors: Partial<Record<keyof WebhookFormValues, string>> = {};
  const url = v.url.trim();
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || !parsed.hostname) {
    errors.url = tr('Enter an https:// or http:// URL');
  }
  if (v.events.length === 0) errors.events = tr('Choose at least one event');
  const t = v.timeout_ms;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 50 || t > 5000) errors.timeout_ms = tr('50 to 5000 ms');
  if (v.fail_mode !== 'open' && v.fail_mode !== 'closed') errors.fail_mode = tr('Choose a fail mode');
  return errors;
}

/** The app's webhook: settings, secret, recent deliveries and dead letters. */
export function WebhookTab({ appId }: { appId: string }) {
  // The app was just loaded by the page, so a 404 here means "no webhook yet".
  const webhook = useQuery<Webhook | null>(
    () =>
      unwrap(api.GET('/admin/v1/apps/{app_id}/webhook', { params: { path: { app_id: appId } } })).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [appId],
  );
  const [secret, setSecret] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const changed = (w: Webhook) => {
    if (w.secret) setSecret(w.secret);
    webhook.reload();
    setTick((t) => t + 1);
  };

  return (
    <Stack>
      <QueryView query={webhook}>
        {(w) => (
          <Stack>
            {w === null && (
              <Alert variant="light" color="blue" data-testid="no-webhook">
                {tr('No webhook yet. Save the settings below to create it; its signing secret is shown once.')}
              </Alert>
            )}
            <WebhookForm key={w?.updated_at ?? 'new'} appId={appId} webhook={w} onSaved={changed} />
            {w !== null && (
              <Group>
                <ConfirmButton
                  label={tr('Rotate secret')}
                  color="orange"
                  variant="light"
                  title={tr('Rotate webhook secret')}
                  message={tr('Replace the signing secret? Requests are signed with the new one within seconds: update your receiver right away.')}
                  confirmLabel={tr('Rotate')}
                  onConfirm={async () => {
                    const r = await unwrap(
                      api.POST('/admin/v1/apps/{app_id}/webhook/rotate-secret', { params: { path: { app_id: appId } } }),
                    );
                    notifyDone(tr('Secret rotated'));
                    changed(r);
                  }}
                />
                <ConfirmButton
                  label={tr('Delete webhook')}
                  title={tr('Delete webhook')}
                  message={tr('Delete the webhook? Confab stops calling it, and events still pending for it are dropped.')}
                  confirmLabel={tr('Delete')}
                  onConfirm={async () => {
                    await unwrap(
                      api.DELETE('/admin/v1/apps/{app_id}/webhook', { params: { path: { app_id: appId } } }),
                    );
                    notifyDone(tr('Webhook deleted'));
                    webhook.reload();
                    setTick((t) => t + 1);
                  }}
                />
              </Group>
            )}
          </Stack>
        )}
      </QueryView>
      <Deliveries appId={appId} tick={tick} />
      <DeadLetters appId={appId} tick={tick} />
      <SecretModal
        secret={secret}
        title={tr('Webhook signing secret')}
        details={
          <Text size="sm">{tr('Verify the Confab-Signature header of every request with it.')}</Text>
        }
        onClose={() => setSecret(null)}
      />
    </Stack>
  );
}

function WebhookForm({
  appId,
  webhook,
  onSaved,
}: {
  appId: string;
  webhook: Webhook | null;
  onSaved: (w: Webhook) => void;
}) {
  const [busy, setBusy] = useState(false);
  const form = useForm<WebhookFormValues>({
    initialValues: {
      url: webhook?.url ?? '',
      events: webhook?.events ?? ['after_send'],
      timeout_ms: webhook?.timeout_ms ?? 500,
      fail_mode: webhook?.fail_mode ?? 'open',
    },
    validate: (v) => validateWebhook(v),
  });
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      const w = await unwrap(
        api.PUT('/admin/v1/apps/{app_id}/webhook', {
          params: { path: { app_id: appId } },
          body: {
            url: v.url.trim(),
            events: v.events as EventName[],
            timeout_ms: v.timeout_ms as number,
            fail_mode: v.fail_mode as FailMode,
          },
        }),
      );
      notifyDone(webhook ? tr('Webhook saved') : tr('Webhook created'));
      form.resetDirty();
      onSaved(w);
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  const events = form.getInputProps('events');
  return (
    <Paper withBorder p="md" maw={720}>
      <form onSubmit={submit} noValidate aria-label={tr('Webhook settings')}>
        <Stack>
          <TextInput
            label={tr('Endpoint URL')}
            placeholder="https://hooks.example.com/confab"
            required
            {...form.getInputProps('url')}
          />
          <Checkbox.Group label={tr('Events')} required {...events}>
            <Stack gap="xs" mt="xs">
              {WEBHOOK_EVENTS.map((e) => (
                <Checkbox key={e.value} value={e.value} label={<Code>{e.value}</Code>} description={tr(e.help)} />
              ))}
            </Stack>
          </Checkbox.Group>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <NumberInput
              label={tr('before_send timeout (ms)')}
              min={50}
              max={5000}
              allowDecimal={false}
              {...form.getInputProps('timeout_ms')}
            />
            <Select
              label={tr('before_send fail mode')}
              description={
                form.getValues().fail_mode === 'closed'
                  ? tr('Closed: refuse the message (webhook_unavailable) when the endpoint fails.')
                  : tr('Open: send the message as if allowed when the endpoint fails.')
              }
              data={[
                { value: 'open', label: tr('Open') },
                { value: 'closed', label: tr('Closed') },
              ]}
              allowDeselect={false}
              {...form.getInputProps('fail_mode')}
            />
          </SimpleGrid>
          <Group>
            <Button type="submit" loading={busy} disabled={webhook !== null && !form.isDirty()}>
              {webhook ? tr('Save webhook') : tr('Create webhook')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Paper>
  );
}

function Deliveries({ appId, tick }: { appId: string; tick: number }) {
  const list = useQuery(
    () =>
      unwrap(
        api.GET('/admin/v1/apps/{app_id}/webhook/deliveries', {
          params: { path: { app_id: appId }, query: { limit: 50 } },
        }),
      ).then((r) => r.items),
    [appId, tick],
  );
  return (
    <Stack gap="xs">
      <Group justify="space-between">
        <Title order={4}>{tr('Recent deliveries')}</Title>
        <Button size="xs" variant="subtle" onClick={list.reload}>
          {tr('Refresh')}
        </Button>
      </Group>
      <QueryView query={list} isEmpty={(d) => d.length === 0} empty={tr('No deliveries yet.')}>
        {(items) => (
          <Table.ScrollContainer minWidth={720}>
            <Table className="data-table" striped verticalSpacing="xs" aria-label={tr('Deliveries')}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('Time')}</Table.Th>
                  <Table.Th>{tr('Event')}</Table.Th>
                  <Table.Th>{tr('Outcome')}</Table.Th>
                  <Table.Th>{tr('HTTP status')}</Table.Th>
                  <Table.Th>{tr('Latency (ms)')}</Table.Th>
                  <Table.Th>{tr('Error')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((d, i) => (
                  <Table.Tr key={`${d.event_id}-${d.at}-${i}`}>
                    <Table.Td>
                      <When at={d.at} />
                    </Table.Td>
                    <Table.Td>
                      <Code>{d.event_type}</Code>
                    </Table.Td>
                    <Table.Td>{d.outcome}</Table.Td>
                    <Table.Td>{d.status_code ?? '—'}</Table.Td>
                    <Table.Td>{d.latency_ms}</Table.Td>
                    <Table.Td style={{ overflowWrap: 'anywhere' }}>{d.error ?? ''}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryView>
    </Stack>
  );
}

function DeadLetters({ appId, tick }: { appId: string; tick: number }) {
  const list = useQuery(
    () =>
      unwrap(
        api.GET('/admin/v1/apps/{app_id}/webhook/dead-letters', {
          params: { path: { app_id: appId }, query: { limit: 100 } },
        }),
      ).then((r) => r.items),
    [appId, tick],
  );
  const redeliver = async (eventId: string) => {
    try {
      await unwrap(
        api.POST('/admin/v1/apps/{app_id}/webhook/dead-letters/{event_id}/redeliver', {
          params: { path: { app_id: appId, event_id: eventId } },
        }),
      );
      notifyDone(tr('Event {id} queued for redelivery', { id: eventId }));
      list.reload();
    } catch (e) {
      notifyError(e);
    }
  };
  return (
    <Stack gap="xs">
      <Group justify="space-between">
        <Title order={4}>{tr('Dead letters')}</Title>
        <Button size="xs" variant="subtle" onClick={list.reload}>
          {tr('Refresh')}
        </Button>
      </Group>
      <QueryView query={list} isEmpty={(d) => d.length === 0} empty={tr('No dead letters.')}>
        {(items) => (
          <Table.ScrollContainer minWidth={720}>
            <Table className="data-table" striped verticalSpacing="xs" aria-label={tr('Dead letters')}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('Created')}</Table.Th>
                  <Table.Th>{tr('Event id')}</Table.Th>
                  <Table.Th>{tr('Event')}</Table.Th>
                  <Table.Th>{tr('Attempts')}</Table.Th>
                  <Table.Th>{tr('Last error')}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((d) => (
                  <Table.Tr key={d.event_id}>
                    <Table.Td>
                      <When at={d.created_at} />
                    </Table.Td>
                    <Table.Td>
                      <Code style={{ overflowWrap: 'anywhere' }}>{d.event_id}</Code>
                    </Table.Td>
                    <Table.Td>
                      <Code>{d.event_type}</Code>
                    </Table.Td>
                    <Table.Td>{d.attempts}</Table.Td>
                    <Table.Td style={{ overflowWrap: 'anywhere' }}>{d.last_error ?? ''}</Table.Td>
                    <Table.Td>
                      <Button
                        size="compact-sm"
                        variant="light"
                        aria-label={tr('Redeliver {id}', { id: d.event_id })}
                        onClick={() => redeliver(d.event_id)}
                      >
                        {tr('Redeliver')}
                      </Button>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryView>
    </Stack>
  );
}
