import { mkdirSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { apiPost, apiToken, apiUrl, expect, signIn, test, unique } from './fixtures';

const DOCS = '../docs/console';

/** A picture of the page for docs/console/ (en or zh), after fade-ins. */
async function shoot(page: Page, name: string) {
  mkdirSync(DOCS, { recursive: true });
  await page.waitForTimeout(400);
  await page.screenshot({ path: `${DOCS}/${name}.png`, fullPage: true });
}

async function setLang(page: Page, lang: 'en' | 'zh') {
  await page.evaluate((l) => localStorage.setItem('confab.lang', l), lang);
  await page.reload();
}

test('push credentials: every vendor listed, validated upload, status, confirmed delete', async ({ page, request }) => {
  const token = await apiToken(request);
  const tenant = await apiPost<{ tenant_id: string }>(request, token, '/admin/v1/tenants', { name: unique('push') });
  const app = await apiPost<{ app_id: string }>(request, token, '/admin/v1/apps', { tenant_id: tenant.tenant_id, name: 'pushed' });
  await signIn(page);
  await page.goto(`/console/apps/${app.app_id}`);
  await page.getByRole('tab', { name: 'Push' }).click();
  await expect(page).toHaveURL(/\/apps\/app_[^/]+\/push$/);
  for (const v of ['apns', 'fcm', 'huawei', 'xiaomi', 'oppo', 'vivo', 'honor']) {
    await expect(page.getByTestId(`push-row-${v}`)).toContainText('not configured');
  }

  // Validated before upload: nothing reaches the API.
  await page.getByRole('button', { name: 'Upload Huawei credentials' }).click();
  const dialog = page.getByRole('dialog', { name: 'Huawei credentials' });
  await dialog.getByRole('button', { name: 'Save credentials' }).click();
  await expect(dialog.getByText('Required')).toHaveCount(2);
  await dialog.getByLabel('App id').fill('104455667');
  await dialog.getByLabel('App secret').fill('huawei-app-secret-value');
  await dialog.getByRole('button', { name: 'Save credentials' }).click();
  await expect(dialog).toBeHidden();
  const row = page.getByTestId('push-row-huawei');
  await expect(row).toContainText('configured');
  await expect(row).not.toContainText('not configured');
  // The secret is never shown back, not even in the page.
  expect(await page.content()).not.toContain('huawei-app-secret-value');

  // APNs: the key file's format is checked in the form.
  await page.getByRole('button', { name: 'Upload Apple (APNs) credentials' }).click();
  const apns = page.getByRole('dialog', { name: 'Apple (APNs) credentials' });
  await apns.getByLabel('Key (.p8)').fill('not a key');
  await apns.getByLabel('Key id').fill('abc');
  await apns.getByRole('button', { name: 'Save credentials' }).click();
  await expect(apns.getByText('Paste the whole .p8 file (BEGIN/END PRIVATE KEY)')).toBeVisible();
  await expect(apns.getByText('10 capital letters or digits')).toBeVisible();
  await apns.press('Escape');
  await expect(apns).toBeHidden();
  await expect(page.getByTestId('push-row-apns')).toContainText('not configured');
  await shoot(page, 'push-en');

  // Delete asks first; cancel keeps them.
  await row.getByRole('button', { name: 'Delete Huawei credentials' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete Huawei credentials' });
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(row).not.toContainText('not configured');
  await row.getByRole('button', { name: 'Delete Huawei credentials' }).click();
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await expect(row).toContainText('not configured');
  const listed = await request.get(`${apiUrl()}/admin/v1/apps/${app.app_id}/push-credentials`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect((await listed.json()).items).toEqual([]);

  await setLang(page, 'zh');
  await expect(page.getByTestId('push-row-huawei')).toContainText('未配置');
  await shoot(page, 'push-zh');
  await setLang(page, 'en');
});

test('support: conversation lookup by id, user lookup, system message, revoke', async ({ page, request }) => {
  const token = await apiToken(request);
  const tenant = await apiPost<{ tenant_id: string }>(request, token, '/admin/v1/tenants', { name: unique('support') });
  const app = await apiPost<{ app_id: string; secret: string }>(request, token, '/admin/v1/apps', {
    tenant_id: tenant.tenant_id,
    name: 'helpdesk',
  });
  // The tenant's backend talks: two messages between alice and bob (the new
  // key reaches the data plane within a second: retried until it is known;
  // client_msg_id makes a retry harmless).
  for (const [i, text] of ['hello bob', 'are you there?'].entries()) {
    await expect
      .poll(async () => {
        const r = await request.post(`${apiUrl()}/v1/messages`, {
          headers: { Authorization: `Bearer ${app.secret}` },
          data: { from: 'alice', to: { kind: 'user', id: 'bob' }, body: { type: 'text', text }, client_msg_id: `m${i}` },
        });
        return r.status();
      })
      .toBe(201);
  }

  await signIn(page);
  await page.goto(`/console/apps/${app.app_id}/conversations`);
  // Validated before the lookup.
  await page.getByLabel('Conversation id').fill('alice-bob');
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page.getByText('A conversation id: p2p:<user>:<user> or group:<id>')).toBeVisible();
  // The users in any order; the URL can be bookmarked.
  await page.getByLabel('Conversation id').fill('p2p:bob:alice');
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page).toHaveURL(/conversations\?conv=p2p%3Aalice%3Abob$/);
  const messages = page.getByRole('table', { name: 'Messages' });
  await expect(messages.getByTestId('message-2')).toContainText('are you there?');
  await expect(messages.getByTestId('message-1')).toContainText('hello bob');
  await shoot(page, 'conversation-en');
  await page.reload();
  await expect(page.getByRole('table', { name: 'Messages' }).getByTestId('message-1')).toContainText('hello bob');
  // An unknown conversation: the API's message.
  await page.goto(`/console/apps/${app.app_id}/conversations?conv=p2p:nobody:someone`);
  await expect(page.getByRole('alert')).toContainText('no such conversation');

  // User lookup: no device; a system message lands in bob's conversation with the system.
  await page.goto(`/console/apps/${app.app_id}/users?user=bob`);
  await expect(page.getByTestId('empty')).toContainText('No device is online or registered for push.');
  await page.getByLabel('System message to bob').fill('Your report was received.');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByText(/Message sent \(p2p:bob:system #1\)/)).toBeVisible();
  const history = await request.get(`${apiUrl()}/v1/conversations/p2p:bob:system/messages`, {
    headers: { Authorization: `Bearer ${app.secret}` },
  });
  expect((await history.json()).items[0].body.text).toBe('Your report was received.');
  await shoot(page, 'user-en');

  // Revoking asks first.
  await page.getByRole('button', { name: 'Revoke tokens and kick' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke tokens and kick' });
  await confirm.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByText('Tokens of bob revoked')).toBeVisible();

  await setLang(page, 'zh');
  await expect(page.getByRole('tab', { name: '用户' })).toBeVisible();
  await shoot(page, 'user-zh');
  await page.goto(`/console/apps/${app.app_id}/conversations?conv=p2p:alice:bob`);
  await expect(page.getByRole('table', { name: '消息' }).getByTestId('message-1')).toContainText('hello bob');
  await shoot(page, 'conversation-zh');
  await setLang(page, 'en');
});

test('screenshots of the main pages in both languages, for docs/console/', async ({ page, request }) => {
  const token = await apiToken(request);
  const tenant = await apiPost<{ tenant_id: string }>(request, token, '/admin/v1/tenants', { name: unique('tour') });
  const app = await apiPost<{ app_id: string }>(request, token, '/admin/v1/apps', { tenant_id: tenant.tenant_id, name: 'tour' });
  await apiPost(request, token, `/admin/v1/apps/${app.app_id}/keys`, {});
  await signIn(page);
  const pages: [string, string, string][] = [
    ['tenants', '/console/tenants', 'tenant-row-default'],
    ['app-settings', `/console/apps/${app.app_id}/settings`, ''],
    ['keys', `/console/apps/${app.app_id}/keys`, ''],
    ['words', `/console/apps/${app.app_id}/words`, ''],
    ['webhook', `/console/apps/${app.app_id}/webhook`, 'no-webhook'],
    ['gray-rules', '/console/gray-rules', ''],
    ['cells', '/console/cells', ''],
  ];
  for (const lang of ['en', 'zh'] as const) {
    await setLang(page, lang);
    for (const [name, url, testId] of pages) {
      await page.goto(url);
      if (testId) await expect(page.getByTestId(testId)).toBeVisible();
      await expect(page.locator('[aria-busy="true"]')).toHaveCount(0);
      await shoot(page, `${name}-${lang}`);
    }
  }
  await setLang(page, 'en');
});
