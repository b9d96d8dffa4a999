import { Anchor, Breadcrumbs, Button, Group, Tabs, Text } from '@mantine/core';
import { Link, useNavigate, useParams } from 'react-router';
import { api, unwrap } from '../api/client';
import { useQuery } from '../api/useQuery';
import { isOperator, useAccount } from '../auth';
import { ConfirmButton, IdText, PageHeader, QueryView, StatusBadge, notifyDone, notifyError } from '../components/common';
import { AppSettingsTab, QuotasTab } from './AppSettings';
import { KeysTab } from './Keys';
import { WordsPanel } from './Words';
import { WebhookTab } from './Webhook';
import { PushTab } from './Push';
import { ConversationsTab, UsersTab } from './Support';
import { GroupsTab } from './Groups';
import { DashboardTab } from './Dashboard';
import { tr } from '../i18n';

const TABS = ['dashboard', 'settings', 'quotas', 'keys', 'words', 'webhook', 'push', 'users', 'groups', 'conversations'] as const;

export function AppPage() {
  const { appId = '', tab } = useParams();
  const navigate = useNavigate();
  const account = useAccount();
  const app = useQuery(
    () => unwrap(api.GET('/admin/v1/apps/{app_id}', { params: { path: { app_id: appId } } })),
    [appId],
  );
  const current = TABS.find((t) => t === tab) ?? 'settings';

  const setStatus = async (status: 'active' | 'suspended') => {
    const path = status === 'suspended' ? '/admin/v1/apps/{app_id}/suspend' : '/admin/v1/apps/{app_id}/resume';
    await unwrap(api.POST(path, { params: { path: { app_id: appId } } }));
    notifyDone(status === 'suspended' ? tr('App suspended') : tr('App resumed'));
    app.reload();
  };

  return (
    <QueryView query={app}>
      {(a) => (
        <>
          <Breadcrumbs mb="xs">
            {isOperator(account) && (
              <Anchor component={Link} to="/tenants">
                {tr('Tenants')}
              </Anchor>
            )}
            <Anchor component={Link} to={`/tenants/${a.tenant_id}`}>
              {tr('Apps')}
            </Anchor>
            <Text>{a.name}</Text>
          </Breadcrumbs>
          <PageHeader
            title={
              <>
                {a.name} <StatusBadge status={a.status} />
              </>
            }
          >
            {a.status === 'active' ? (
              <ConfirmButton
                label={tr('Suspend')}
                color="orange"
                size="sm"
                title={tr('Suspend app')}
                message={tr('Suspend this app? It refuses logins and REST calls, and its live sessions are kicked.')}
                confirmLabel={tr('Suspend')}
                onConfirm={() => setStatus('suspended')}
              />
            ) : (
              <Button variant="light" color="green" onClick={() => setStatus('active').catch(notifyError)}>
                {tr('Resume')}
              </Button>
            )}
            <ConfirmButton
              label={tr('Delete app')}
              size="sm"
              title={tr('Delete app')}
              message={tr('Delete {name} with its keys and word list? Its users can no longer log in. This cannot be undone.', { name: a.name })}
              confirmLabel={tr('Delete')}
              typeToConfirm={a.name}
              onConfirm={async () => {
                await unwrap(api.DELETE('/admin/v1/apps/{app_id}', { params: { path: { app_id: a.app_id } } }));
                notifyDone(tr('App {name} deleted', { name: a.name }));
                navigate(`/tenants/${a.tenant_id}`);
              }}
            />
          </PageHeader>
          <Group gap={4} mb="md">
            <Text size="sm" c="dimmed">
              {tr('App id')}
            </Text>
            <IdText id={a.app_id} />
          </Group>
          <Tabs
            value={current}
            onChange={(v) => v && navigate(`/apps/${a.app_id}/${v}`)}
            keepMounted={false}
          >
            <Tabs.List mb="md">
              <Tabs.Tab value="dashboard">{tr('Dashboard')}</Tabs.Tab>
              <Tabs.Tab value="settings">{tr('Settings')}</Tabs.Tab>
              <Tabs.Tab value="quotas">{tr('Quotas')}</Tabs.Tab>
              <Tabs.Tab value="keys">{tr('Keys')}</Tabs.Tab>
              <Tabs.Tab value="words">{tr('Sensitive words')}</Tabs.Tab>
              <Tabs.Tab value="webhook">{tr('Webhook')}</Tabs.Tab>
              <Tabs.Tab value="push">{tr('Push')}</Tabs.Tab>
              <Tabs.Tab value="users">{tr('Users')}</Tabs.Tab>
              <Tabs.Tab value="groups">{tr('Groups')}</Tabs.Tab>
              <Tabs.Tab value="conversations">{tr('Conversations')}</Tabs.Tab>
            </Tabs.List>
            <Tabs.Panel value="dashboard">
              <DashboardTab appId={a.app_id} />
            </Tabs.Panel>
            <Tabs.Panel value="settings">
              <AppSettingsTab app={a} onSaved={app.reload} />
            </Tabs.Panel>
            <Tabs.Panel value="quotas">
              <QuotasTab app={a} onSaved={app.reload} />
            </Tabs.Panel>
            <Tabs.Panel value="keys">
              <KeysTab appId={a.app_id} />
            </Tabs.Panel>
            <Tabs.Panel value="words">
              <WordsPanel appId={a.app_id} />
            </Tabs.Panel>
            <Tabs.Panel value="webhook">
              <WebhookTab appId={a.app_id} />
            </Tabs.Panel>
            <Tabs.Panel value="push">
              <PushTab appId={a.app_id} />
            </Tabs.Panel>
            <Tabs.Panel value="users">
              <UsersTab appId={a.app_id} />
            </Tabs.Panel>
            <Tabs.Panel value="groups">
              <GroupsTab appId={a.app_id} />
            </Tabs.Panel>
            <Tabs.Panel value="conversations">
              <ConversationsTab appId={a.app_id} />
            </Tabs.Panel>
          </Tabs>
        </>
      )}
    </QueryView>
  );
}
