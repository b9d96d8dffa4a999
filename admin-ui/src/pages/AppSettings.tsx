import { useState } from 'react';
import { Alert, Button, Group, NumberInput, Paper, Select, SimpleGrid, Stack, Text } from '@mantine/core';
import { useForm } from '@mantine/form';
import { api, unwrap, type App, type KickPolicy, type Quotas } from '../api/client';
import { isOperator, useAccount } from '../auth';
import { notifyDone, notifyError } from '../components/common';
import { tr } from '../i18n';

const KICK_POLICIES: { value: KickPolicy; label: string; help: string }[] = [
  { value: 'one_per_platform', label: 'One device per platform', help: 'A new login kicks the device on the same platform.' },
  { value: 'one_in_all', label: 'One device in all', help: 'A new login kicks every other device of the user.' },
  { value: 'unlimited', label: 'Unlimited devices', help: 'Logins never kick other devices.' },
];

const WEEK_SECONDS = 7 * 24 * 3600;

export function AppSettingsTab({ app, onSaved }: { app: App; onSaved: () => void }) {
  const operator = isOperator(useAccount());
  const [busy, setBusy] = useState(false);
  const s = app.settings;
  const form = useForm({
    initialValues: {
      kick_policy: s.kick_policy as string,
      recall_window_s: s.recall_window_ms / 1000,
      max_body_bytes: s.max_body_bytes,
      retention_days: s.retention_days,
    },
    validate: {
      kick_policy: (v) => (KICK_POLICIES.some((p) => p.value === v) ? null : tr('Choose a policy')),
      recall_window_s: (v) =>
        typeof v === 'number' && v >= 0 && v <= WEEK_SECONDS ? null : tr('0 to {n} seconds (7 days)', { n: WEEK_SECONDS }),
      max_body_bytes: (v) => (typeof v === 'number' && v >= 1 && v <= 65536 ? null : tr('1 to 65536 bytes')),
      retention_days: (v) => (typeof v === 'number' && v >= 1 && v <= 3650 ? null : tr('1 to 3650 days')),
    },
  });
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      const settings = operator
        ? {
            kick_policy: v.kick_policy as KickPolicy,
            recall_window_ms: Math.round(v.recall_window_s * 1000),
            max_body_bytes: v.max_body_bytes,
            retention_days: v.retention_days,
          }
        : { kick_policy: v.kick_policy as KickPolicy };
      await unwrap(
        api.PATCH('/admin/v1/apps/{app_id}', { params: { path: { app_id: app.app_id } }, body: { settings } }),
      );
      notifyDone(tr('Settings saved'));
      form.resetDirty();
      onSaved();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Paper withBorder p="md" maw={720}>
      <form onSubmit={submit} noValidate>
        <Stack>
          <Select
            label={tr('Kick policy')}
            description={tr(KICK_POLICIES.find((p) => p.value === form.getValues().kick_policy)?.help ?? '')}
            data={KICK_POLICIES.map(({ value, label }) => ({ value, label: tr(label) }))}
            allowDeselect={false}
            {...form.getInputProps('kick_policy')}
          />
          {!operator && (
            <Text size="xs" c="dimmed">
              {tr('The recall window, body size and retention are quotas: an operator changes them.')}
            </Text>
          )}
          <SimpleGrid cols={{ base: 1, sm: 3 }}>
            <NumberInput
              label={tr('Recall window (seconds)')}
              min={0}
              max={WEEK_SECONDS}
              allowDecimal={false}
              disabled={!operator}
              {...form.getInputProps('recall_window_s')}
            />
            <NumberInput
              label={tr('Max body (bytes)')}
              min={1}
              max={65536}
              allowDecimal={false}
              disabled={!operator}
              {...form.getInputProps('max_body_bytes')}
            />
            <NumberInput
              label={tr('History retention (days)')}
              min={1}
              max={3650}
              allowDecimal={false}
              disabled={!operator}
              {...form.getInputProps('retention_days')}
            />
          </SimpleGrid>
          <Group>
            <Button type="submit" loading={busy} disabled={!form.isDirty()}>
              {tr('Save settings')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Paper>
  );
}

const QUOTA_FIELDS: { key: keyof Quotas; label: string; min: number; max?: number }[] = [
  { key: 'max_connections', label: 'Concurrent connections (per cell)', min: 1 },
  { key: 'app_messages_per_sec', label: 'Messages per second (app)', min: 1 },
  { key: 'user_messages_per_sec', label: 'Messages per second (user)', min: 1 },
  { key: 'max_group_size', label: 'Group size', min: 2, max: 100000 },
  { key: 'max_groups_per_user', label: 'Groups per user', min: 1 },
  { key: 'rest_requests_per_sec', label: 'REST requests per second', min: 1 },
];

const INT32 = 2147483647;

export function QuotasTab({ app, onSaved }: { app: App; onSaved: () => void }) {
  const operator = isOperator(useAccount());
  const [busy, setBusy] = useState(false);
  const form = useForm<Quotas>({
    initialValues: { ...app.settings.quotas },
    validate: Object.fromEntries(
      QUOTA_FIELDS.map((f) => [
        f.key,
        (v: unknown) =>
          typeof v === 'number' && Number.isInteger(v) && v >= f.min && v <= (f.max ?? INT32)
            ? null
            : `${f.min} to ${f.max ?? INT32}`,
      ]),
    ),
  });
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      await unwrap(
        api.PUT('/admin/v1/apps/{app_id}/quotas', { params: { path: { app_id: app.app_id } }, body: v }),
      );
      notifyDone(tr('Quotas saved'));
      form.resetDirty();
      onSaved();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Paper withBorder p="md" maw={720}>
      <form onSubmit={submit} noValidate>
        <Stack>
          {!operator && (
            <Alert color="blue" variant="light">
              {tr('Quotas are set by the platform operator. Exceeding one gives your users a clear error (quota_exceeded or rate_limited). Current usage against them is not reported by the API yet.')}
            </Alert>
          )}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            {QUOTA_FIELDS.map((f) => (
              <NumberInput
                key={f.key}
                label={tr(f.label)}
                min={f.min}
                max={f.max ?? INT32}
                allowDecimal={false}
                thousandSeparator=" "
                readOnly={!operator}
                variant={operator ? 'default' : 'filled'}
                {...form.getInputProps(f.key)}
              />
            ))}
          </SimpleGrid>
          {operator && (
            <Group>
              <Button type="submit" loading={busy} disabled={!form.isDirty()}>
                {tr('Save quotas')}
              </Button>
            </Group>
          )}
        </Stack>
      </form>
    </Paper>
  );
}
