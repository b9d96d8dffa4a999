import { useState } from 'react';
import {
  Alert,
  Badge,
  Button,
  Group,
  Modal,
  NumberInput,
  Paper,
  Progress,
  Select,
  SimpleGrid,
  Slider,
  Stack,
  Table,
  TagsInput,
  Text,
  TextInput,
} from '@mantine/core';
import { useForm } from '@mantine/form';
import { allPages, api, idempotencyKey, unwrap, type GrayRule, type GrayRuleInput } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, PageHeader, QueryView, notifyDone, notifyError } from '../components/common';
import { listTenants } from './Tenants';
import { tr } from '../i18n';

const listRules = () =>
  allPages((cursor) => unwrap(api.GET('/admin/v1/gray-rules', { params: { query: { limit: 200, cursor } } })));
const listApps = () =>
  allPages((cursor) => unwrap(api.GET('/admin/v1/apps', { params: { query: { limit: 200, cursor } } })));

export const RELEASE_RE = /^[A-Za-z0-9._-]{1,40}$/;
export const VERSION_RE = /^\d+(\.\d+)*$/;

export function GrayRules() {
  const rules = useQuery(listRules, []);
  const tenants = useQuery(listTenants, []);
  const apps = useQuery(listApps, []);
  const [editing, setEditing] = useState<GrayRule | 'new' | null>(null);
  const tenantName = (id?: string | null) => (tenants.data ?? []).find((t) => t.tenant_id === id)?.name ?? id;
  const appName = (id?: string | null) => (apps.data ?? []).find((a) => a.app_id === id)?.name ?? id;

  return (
    <>
      <PageHeader title={tr('Gray release')}>
        <Button onClick={() => setEditing('new')}>{tr('New rule')}</Button>
      </PageHeader>
      <Text size="sm" c="dimmed" mb="md">
        {tr("Rules move a share of users to a logic release; they are checked lowest priority first and the first match decides. A user's bucket is a stable hash of app and user, so raising the percentage only adds users.")}
      </Text>
      <QueryView query={rules} isEmpty={(d) => d.length === 0} empty={tr('No rules: every user is on the default release.')}>
        {(items) => (
          <Table.ScrollContainer minWidth={820}>
            <Table className="data-table" striped verticalSpacing="sm" aria-label={tr('Gray rules')}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{tr('Priority')}</Table.Th>
                  <Table.Th>{tr('Release')}</Table.Th>
                  <Table.Th>{tr('Share')}</Table.Th>
                  <Table.Th>{tr('Tenant')}</Table.Th>
                  <Table.Th>{tr('App')}</Table.Th>
                  <Table.Th>{tr('Platforms')}</Table.Th>
                  <Table.Th>{tr('Min version')}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((r) => (
                  <Table.Tr key={r.rule_id} data-testid={`rule-${r.release}`}>
                    <Table.Td>{r.priority}</Table.Td>
                    <Table.Td>
                      <Badge variant="light">{r.release}</Badge>
                    </Table.Td>
                    <Table.Td>{r.percent}%</Table.Td>
                    <Table.Td>{r.tenant_id ? tenantName(r.tenant_id) : tr('any')}</Table.Td>
                    <Table.Td>{r.app_id ? appName(r.app_id) : tr('any')}</Table.Td>
                    <Table.Td>{r.platforms.length ? r.platforms.join(', ') : tr('any')}</Table.Td>
                    <Table.Td>{r.min_client_version ?? tr('any')}</Table.Td>
                    <Table.Td>
                      <Group gap={4} wrap="nowrap" justify="flex-end">
                        <Button size="xs" variant="default" onClick={() => setEditing(r)}>
                          {tr('Edit')}
                        </Button>
                        <ConfirmButton
                          label={tr('Delete')}
                          title={tr('Delete rule')}
                          message={tr('Delete the rule moving {percent}% to {release}? Its users move back at once.', { percent: r.percent, release: r.release })}
                          confirmLabel={tr('Delete')}
                          onConfirm={async () => {
                            await unwrap(
                              api.DELETE('/admin/v1/gray-rules/{rule_id}', { params: { path: { rule_id: r.rule_id } } }),
                            );
                            notifyDone(tr('Rule deleted'));
                            rules.reload();
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
      {editing !== null && (
        <RuleForm
          rule={editing === 'new' ? null : editing}
          tenants={(tenants.data ?? []).map((t) => ({ value: t.tenant_id, label: t.name }))}
          apps={(apps.data ?? []).map((a) => ({ value: a.app_id, label: `${a.name} (${a.app_id})`, tenant: a.tenant_id }))}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            rules.reload();
          }}
        />
      )}
    </>
  );
}

interface FormValues {
  release: string;
  percent: number;
  priority: number;
  tenant_id: string | null;
  app_id: string | null;
  platforms: string[];
  min_client_version: string;
  preview_app: string | null;
}

function RuleForm({
  rule,
  tenants,
  apps,
  onClose,
  onSaved,
}: {
  rule: GrayRule | null;
  tenants: { value: string; label: string }[];
  apps: { value: string; label: string; tenant: string }[];
  onClose: () => void;
  onSaved: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState<{ matched: number; total: number; share: number } | null>(null);
  const [previewError, setPreviewError] = useState<string>();
  const [previewing, setPreviewing] = useState(false);
  const form = useForm<FormValues>({
    initialValues: {
      release: rule?.release ?? '',
      percent: rule?.percent ?? 10,
      priority: rule?.priority ?? 100,
      tenant_id: rule?.tenant_id ?? null,
      app_id: rule?.app_id ?? null,
      platforms: rule?.platforms ?? [],
      min_client_version: rule?.min_client_version ?? '',
      preview_app: rule?.app_id ?? null,
    },
    validate: {
      release: (v) => (RELEASE_RE.test(v) ? null : tr('1 to 40 of letters, digits, “.”, “_”, “-”')),
      percent: (v) => (Number.isInteger(v) && v >= 0 && v <= 100 ? null : tr('0 to 100')),
      priority: (v) => (Number.isInteger(v) ? null : tr('A whole number')),
      min_client_version: (v) => (!v || VERSION_RE.test(v.trim()) ? null : tr('Dotted numbers, e.g. 2.3.0')),
    },
    onValuesChange: () => setPreview(null),
  });

  const input = (v: FormValues): GrayRuleInput => ({
    release: v.release,
    percent: v.percent,
    priority: v.priority,
    tenant_id: v.tenant_id || null,
    app_id: v.app_id || null,
    platforms: v.platforms.map((p) => p.trim()).filter(Boolean),
    min_client_version: v.min_client_version.trim() || null,
  });

  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      if (rule) {
        await unwrap(
          api.PUT('/admin/v1/gray-rules/{rule_id}', { params: { path: { rule_id: rule.rule_id } }, body: input(v) }),
        );
      } else {
        await unwrap(
          api.POST('/admin/v1/gray-rules', { body: input(v), headers: { 'Idempotency-Key': idempotencyKey() } }),
        );
      }
      notifyDone(rule ? tr('Rule saved') : tr('Rule created'));
      onSaved();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });

  const runPreview = async () => {
    const v = form.getValues();
    if (form.validate().hasErrors) return;
    const appId = v.app_id || v.preview_app;
    if (!appId) {
      form.setFieldError('preview_app', tr('Choose an app to preview over'));
      return;
    }
    setPreviewing(true);
    setPreviewError(undefined);
    try {
      setPreview(
        await unwrap(api.POST('/admin/v1/gray-rules/preview', { body: { rule: input(v), app_id: appId, sample: 10000 } })),
      );
    } catch (e) {
      setPreview(null);
      setPreviewError(e instanceof Error ? e.message : String(e));
    } finally {
      setPreviewing(false);
    }
  };

  const values = form.getValues();
  const appOptions = values.tenant_id ? apps.filter((a) => a.tenant === values.tenant_id) : apps;

  return (
    <Modal opened onClose={onClose} title={rule ? tr('Edit rule {id}', { id: rule.rule_id }) : tr('New gray rule')} size="lg" centered>
      <form onSubmit={submit} noValidate>
        <Stack>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label={tr('Release')} placeholder={tr('canary')} required data-autofocus {...form.getInputProps('release')} />
            <NumberInput
              label={tr('Priority')}
              description={tr('Lower is checked first')}
              allowDecimal={false}
              {...form.getInputProps('priority')}
            />
          </SimpleGrid>
          <div>
            <NumberInput
              label={tr('Percent of matching users')}
              min={0}
              max={100}
              allowDecimal={false}
              suffix="%"
              {...form.getInputProps('percent')}
            />
            <Slider
              mt="xs"
              min={0}
              max={100}
              aria-label={tr('Percent slider')}
              value={values.percent}
              onChange={(p) => form.setFieldValue('percent', p)}
              label={(p) => `${p}%`}
            />
          </div>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <Select
              label={tr('Tenant')}
              placeholder={tr('any')}
              data={tenants}
              clearable
              searchable
              {...form.getInputProps('tenant_id')}
            />
            <Select label={tr('App')} placeholder={tr('any')} data={appOptions} clearable searchable {...form.getInputProps('app_id')} />
            <TagsInput
              label={tr('Platforms')}
              placeholder={tr('any (type and press Enter)')}
              data={['ios', 'android', 'web', 'windows', 'macos', 'linux']}
              {...form.getInputProps('platforms')}
            />
            <TextInput label={tr('Minimum client version')} placeholder={tr('any, e.g. 2.3.0')} {...form.getInputProps('min_client_version')} />
          </SimpleGrid>
          <Paper withBorder p="sm" bg="gray.0">
            <Stack gap="xs">
              <Text fw={500} size="sm">
                {tr('Preview')}
              </Text>
              {!values.app_id && (
                <Select
                  label={tr('App to preview over')}
                  data={appOptions}
                  searchable
                  {...form.getInputProps('preview_app')}
                />
              )}
              <Group>
                <Button variant="light" onClick={runPreview} loading={previewing}>
                  {tr('Preview share')}
                </Button>
                {preview && (
                  <Text size="sm" data-testid="preview-result">
                    {tr('Would move {share} of users ({matched} of {total} sampled)', {
                      share: `${(preview.share * 100).toFixed(1)}%`,
                      matched: preview.matched.toLocaleString('en-US'),
                      total: preview.total.toLocaleString('en-US'),
                    })}
                  </Text>
                )}
              </Group>
              {preview && <Progress value={preview.share * 100} aria-label={tr('Share of users moved')} />}
              {previewError && (
                <Alert color="red" role="alert">
                  {previewError}
                </Alert>
              )}
            </Stack>
          </Paper>
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {tr('Cancel')}
            </Button>
            <Button type="submit" loading={busy}>
              {rule ? tr('Save rule') : tr('Create rule')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
