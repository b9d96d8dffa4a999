import { useState } from 'react';
import { Alert, Badge, Button, Checkbox, Code, Group, Modal, NativeSelect, Pagination, Paper, Stack, Table, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useSearchParams } from 'react-router';
import { useForm } from '@mantine/form';
import { api, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, QueryView, When, notifyDone, notifyError } from '../components/common';
import { tr } from '../i18n';

type Status = Schemas['PushCredentialStatus'];
type TestOutcome = Schemas['TestPushOutcome'];

interface Field {
  name: string;
  label: string;
  /** Multi-line (a key file). */
  long?: boolean;
  check?: (v: string) => string | null;
}

const pem = (v: string) =>
  /-----BEGIN PRIVATE KEY-----[\s\S]+-----END PRIVATE KEY-----/.test(v) ? null : tr('Paste the whole .p8 file (BEGIN/END PRIVATE KEY)');
const serviceAccount = (v: string) => {
  try {
    const j = JSON.parse(v) as Record<string, unknown>;
    return typeof j.client_email === 'string' && typeof j.private_key === 'string' && typeof j.project_id === 'string'
      ? null
      : tr('A service-account key file has project_id, client_email and private_key');
  } catch {
    return tr('Not valid JSON');
  }
};
const tenChars = (v: string) => (/^[A-Z0-9]{10}$/.test(v.trim()) ? null : tr('10 capital letters or digits'));

/** Each vendor's credential fields, as `PUT /admin/v1/apps/{id}/push-credentials/{vendor}` takes them. */
export const VENDORS: { vendor: string; name: string; fields: Field[]; sandbox?: boolean }[] = [
  {
    vendor: 'apns',
    name: 'Apple (APNs)',
    fields: [
      { name: 'key_p8', label: 'Key (.p8)', long: true, check: pem },
      { name: 'key_id', label: 'Key id', check: tenChars },
      { name: 'team_id', label: 'Team id', check: tenChars },
      { name: 'topic', label: 'Topic (bundle id)' },
    ],
    sandbox: true,
  },
  { vendor: 'fcm', name: 'Firebase (FCM)', fields: [{ name: 'service_account_json', label: 'Service account JSON', long: true, check: serviceAccount }] },
  { vendor: 'huawei', name: 'Huawei', fields: [{ name: 'app_id', label: 'App id' }, { name: 'app_secret', label: 'App secret' }] },
  { vendor: 'xiaomi', name: 'Xiaomi', fields: [{ name: 'app_secret', label: 'App secret' }, { name: 'package', label: 'Package name' }] },
  { vendor: 'oppo', name: 'OPPO', fields: [{ name: 'app_key', label: 'App key' }, { name: 'master_secret', label: 'Master secret' }] },
  {
    vendor: 'vivo',
    name: 'vivo',
    fields: [{ name: 'app_id', label: 'App id' }, { name: 'app_key', label: 'App key' }, { name: 'app_secret', label: 'App secret' }],
  },
  {
    vendor: 'honor',
    name: 'Honor',
    fields: [{ name: 'app_id', label: 'App id' }, { name: 'client_id', label: 'Client id' }, { name: 'client_secret', label: 'Client secret' }],
  },
];

/** The checks made before upload: every field filled, and the vendor's own format where known. */
export function validateCredentials(vendor: string, values: Record<string, string>): Record<string, string> {
  const spec = VENDORS.find((v) => v.vendor === vendor);
  const errors: Record<string, string> = {};
  for (const f of spec?.fields ?? []) {
    const v = (values[f.name] ?? '').trim();
    if (!v) errors[f.name] = tr('Required');
    else if (v.length > 64 * 1024) errors[f.name] = tr('At most 64 KiB');
    else {
      const e = f.check?.(v);
      if (e) errors[f.name] = e;
    }
  }
  return errors;
}

function UploadForm({
  appId,
  vendor,
  onDone,
}: {
  appId: string;
  vendor: (typeof VENDORS)[number];
  onDone: () => void;
}) {
  const initial: Record<string, string> = Object.fromEntries(vendor.fields.map((f) => [f.name, '']));
  const form = useForm<{ values: Record<string, string>; sandbox: boolean }>({
    initialValues: { values: initial, sandbox: false },
    validate: (v) =>
      Object.fromEntries(Object.entries(validateCredentials(vendor.vendor, v.values)).map(([k, e]) => [`values.${k}`, e])),
  });
  const [busy, setBusy] = useState(false);
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      const body: Record<string, unknown> = Object.fromEntries(Object.entries(v.values).map(([k, x]) => [k, x.trim()]));
      if (vendor.sandbox) body.sandbox = v.sandbox;
      await unwrap(
        api.PUT('/admin/v1/apps/{app_id}/push-credentials/{vendor}', {
          params: { path: { app_id: appId, vendor: vendor.vendor } },
          // The document types the body as a free-form object (its shape depends on the vendor).
          body: body as never,
        }),
      );
      notifyDone(tr('{vendor} credentials saved', { vendor: vendor.name }));
      onDone();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        {vendor.fields.map((f) =>
          f.long ? (
            <Textarea key={f.name} label={tr(f.label)} autosize minRows={4} maxRows={10} withAsterisk
              styles={{ input: { fontFamily: 'monospace' } }} {...form.getInputProps(`values.${f.name}`)} />
          ) : (
            <TextInput key={f.name} label={tr(f.label)} withAsterisk autoComplete="off" {...form.getInputProps(`values.${f.name}`)} />
          ),
        )}
        {vendor.sandbox && (
          <Checkbox label={tr('Sandbox (development builds)')} {...form.getInputProps('sandbox', { type: 'checkbox' })} />
        )}
        <Text size="xs" c="dimmed">
          {tr('Stored encrypted; never shown again. Uploading replaces what is stored.')}
        </Text>
        <Group justify="flex-end">
          <Button type="submit" loading={busy}>
            {tr('Save credentials')}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

/** An app's push credentials: each vendor's status, upload (replace) and delete. */
export function PushTab({ appId }: { appId: string }) {
  const list = useQuery(
    () => unwrap(api.GET('/admin/v1/apps/{app_id}/push-credentials', { params: { path: { app_id: appId } } })),
    [appId],
  );
  const [editing, setEditing] = useState<string | null>(null);
  const vendor = VENDORS.find((v) => v.vendor === editing);
  return (
    <Stack gap="xl">
    <QueryView query={list}>
      {(l) => {
        const byVendor = new Map<string, Status>(l.items.map((s) => [s.vendor, s]));
        return (
          <>
            <Text size="sm" c="dimmed" mb="sm">
              {tr('Offline push needs the credentials of each vendor your apps use.')}
            </Text>
            <Table.ScrollContainer minWidth={560}>
              <Table aria-label={tr('Push credentials')} verticalSpacing="sm">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{tr('Vendor')}</Table.Th>
                    <Table.Th>{tr('Status')}</Table.Th>
                    <Table.Th>{tr('Fingerprint')}</Table.Th>
                    <Table.Th>{tr('Uploaded')}</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {VENDORS.map((v) => {
                    const s = byVendor.get(v.vendor);
                    return (
                      <Table.Tr key={v.vendor} data-testid={`push-row-${v.vendor}`}>
                        <Table.Td>{v.name}</Table.Td>
                        <Table.Td>
                          {s ? (
                            <Badge color="green" variant="light">{tr('configured')}</Badge>
                          ) : (
                            <Badge color="gray" variant="light">{tr('not configured')}</Badge>
                          )}
                        </Table.Td>
                        <Table.Td>
                          <Text ff="monospace" size="sm">{s?.fingerprint ?? '—'}</Text>
                        </Table.Td>
                        <Table.Td>{s ? new Date(s.updated_at).toLocaleString() : '—'}</Table.Td>
                        <Table.Td>
                          <Group gap="xs" justify="flex-end" wrap="nowrap">
                            <Button size="xs" variant="light" onClick={() => setEditing(v.vendor)}
                              aria-label={tr(s ? 'Replace {vendor} credentials' : 'Upload {vendor} credentials', { vendor: v.name })}>
                              {s ? tr('Replace') : tr('Upload')}
                            </Button>
                            {s && (
                              <ConfirmButton
                                label={tr('Delete')}
                                aria-label={tr('Delete {vendor} credentials', { vendor: v.name })}
                                title={tr('Delete {vendor} credentials', { vendor: v.name })}
                                message={tr('Delete the {vendor} credentials? Offline pushes to {vendor} devices stop until new ones are uploaded.', { vendor: v.name })}
                                confirmLabel={tr('Delete')}
                                onConfirm={async () => {
                                  await unwrap(
                                    api.DELETE('/admin/v1/apps/{app_id}/push-credentials/{vendor}', {
                                      params: { path: { app_id: appId, vendor: v.vendor } },
                                    }),
                                  );
                                  notifyDone(tr('{vendor} credentials deleted', { vendor: v.name }));
                                  list.reload();
                                }}
                              />
                            )}
                          </Group>
                        </Table.Td>
                      </Table.Tr>
                    );
                  })}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
            <Modal opened={!!vendor} onClose={() => setEditing(null)} title={vendor ? tr('{vendor} credentials', { vendor: vendor.name }) : ''} centered size="lg">
              {vendor && (
                <UploadForm
                  appId={appId}
                  vendor={vendor}
                  onDone={() => {
                    setEditing(null);
                    list.reload();
                  }}
                />
              )}
            </Modal>
          </>
        );
      }}
    </QueryView>
      <TestPush appId={appId} configured={list.data?.items.map((i) => i.vendor) ?? []} />
      <PushDeadLetters appId={appId} />
    </Stack>
  );
}

/** How each outcome of a test push is shown. */
const OUTCOMES: Record<TestOutcome['status'], { color: string; title: string }> = {
  accepted: { color: 'green', title: 'Accepted by the provider' },
  rejected: { color: 'red', title: 'Rejected by the provider' },
  token_invalid: { color: 'red', title: 'The provider says this token is invalid' },
  credentials_invalid: { color: 'red', title: 'The credentials are invalid' },
  no_credentials: { color: 'yellow', title: 'No credentials for this vendor' },
  unavailable: { color: 'yellow', title: 'The provider could not be reached' },
};

/** Sends one notification to a device token now and shows what the provider answered. */
function TestPush({ appId, configured }: { appId: string; configured: string[] }) {
  const form = useForm({
    initialValues: { vendor: '', token: '' },
    validate: {
      token: (v) => (!v.trim() ? tr('Enter a device token') : v.trim().length > 4096 ? tr('At most 4096 characters') : null),
    },
  });
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<TestOutcome | null>(null);
  // The first configured vendor unless the admin picked one.
  const vendor = form.values.vendor || configured[0] || VENDORS[0].vendor;
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    setOutcome(null);
    try {
      const o = await unwrap(
        api.POST('/admin/v1/apps/{app_id}/push-credentials/{vendor}/test', {
          params: { path: { app_id: appId, vendor } },
          body: { token: v.token.trim() },
        }),
      );
      setOutcome(o);
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  const shown = outcome ? OUTCOMES[outcome.status] : undefined;
  return (
    <Paper withBorder p="md">
      <form onSubmit={submit} noValidate>
        <Stack gap="xs">
          <Title order={4}>{tr('Test push')}</Title>
          <Text size="sm" c="dimmed">
            {tr("Sends one notification to a device now, through the vendor's API with the credentials above, and shows what the provider answered.")}
          </Text>
          <Group align="flex-start" gap="xs" wrap="wrap">
            <NativeSelect
              label={tr('Vendor')}
              value={vendor}
              onChange={(e) => form.setFieldValue('vendor', e.currentTarget.value)}
              data={VENDORS.map((v) => ({
                value: v.vendor,
                label: configured.includes(v.vendor) ? v.name : tr('{vendor} (not configured)', { vendor: v.name }),
              }))}
            />
            <TextInput label={tr('Device token')} autoComplete="off" style={{ flex: 1, minWidth: 220 }}
              styles={{ input: { fontFamily: 'monospace' } }} {...form.getInputProps('token')} />
            <Button type="submit" mt={25} loading={busy}>
              {tr('Send test push')}
            </Button>
          </Group>
          {outcome && shown && (
            <Alert color={shown.color} title={tr(shown.title)} data-testid="test-push-outcome" role="status">
              <Text size="sm">
                <Code>{outcome.status}</Code>
                {outcome.reason ? <> — <span style={{ overflowWrap: 'anywhere' }}>{outcome.reason}</span></> : null}
              </Text>
            </Alert>
          )}
        </Stack>
      </form>
    </Paper>
  );
}

/** Dead letters per page. */
const DEAD_PAGE = 20;

/** Push notifications the worker gave up on, newest first (the latest 200, paged here; the page is in the URL). */
function PushDeadLetters({ appId }: { appId: string }) {
  const [params, setParams] = useSearchParams();
  const list = useQuery(
    () =>
      unwrap(
        api.GET('/admin/v1/apps/{app_id}/push-dead-letters', {
          params: { path: { app_id: appId }, query: { limit: 200 } },
        }),
      ).then((r) => r.items),
    [appId],
  );
  const page = Math.max(1, Number(params.get('dead_page')) || 1);
  const setPage = (p: number) => {
    const next = new URLSearchParams(params);
    if (p > 1) next.set('dead_page', String(p));
    else next.delete('dead_page');
    setParams(next);
  };
  return (
    <Stack gap="xs">
      <Group justify="space-between">
        <Title order={4}>{tr('Push dead letters')}</Title>
        <Button size="xs" variant="subtle" onClick={list.reload}>
          {tr('Refresh')}
        </Button>
      </Group>
      <QueryView query={list} isEmpty={(d) => d.length === 0} empty={tr('No push was given up on.')}>
        {(items) => {
          const pages = Math.max(1, Math.ceil(items.length / DEAD_PAGE));
          const at = Math.min(page, pages);
          return (
            <>
              <Table.ScrollContainer minWidth={760}>
                <Table className="data-table" striped verticalSpacing="xs" aria-label={tr('Push dead letters')}>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>{tr('Given up')}</Table.Th>
                      <Table.Th>{tr('User')}</Table.Th>
                      <Table.Th>{tr('Device')}</Table.Th>
                      <Table.Th>{tr('Vendor')}</Table.Th>
                      <Table.Th>{tr('Attempts')}</Table.Th>
                      <Table.Th>{tr('Reason')}</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {items.slice((at - 1) * DEAD_PAGE, at * DEAD_PAGE).map((d) => (
                      <Table.Tr key={d.id} data-testid={`push-dead-${d.id}`}>
                        <Table.Td>
                          <When at={d.failed_at} />
                        </Table.Td>
                        <Table.Td>
                          <Code>{d.user_id}</Code>
                        </Table.Td>
                        <Table.Td>
                          <Code>{d.device_id}</Code>
                        </Table.Td>
                        <Table.Td>{d.vendor}</Table.Td>
                        <Table.Td>{d.attempts}</Table.Td>
                        <Table.Td style={{ overflowWrap: 'anywhere' }}>{d.reason}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              {pages > 1 && (
                <Pagination total={pages} value={at} onChange={setPage} size="sm"
                  getControlProps={(c) => ({ 'aria-label': c === 'next' ? tr('Next') : c === 'previous' ? tr('Previous') : undefined })} />
              )}
            </>
          );
        }}
      </QueryView>
    </Stack>
  );
}
