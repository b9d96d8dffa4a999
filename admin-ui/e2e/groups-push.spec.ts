import { mkdirSync } from 'node:fs';
import type { APIRequestContext, Page } from '@playwright/test';
import { apiGet, apiPost, apiToken, apiUrl, expect, signIn, test, unique } from './fixtures';
import { FAKE_PUSH } from './fake-push';

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

/** A tenant with an app; its secret key acts as the tenant's backend on /v1. */
async function newApp(request: APIRequestContext, name: string) {
  const token = await apiToken(request);
  const tenant = await apiPost<{ tenant_id: string }>(request, token, '/admin/v1/tenants', { name: unique(name) });
  const app = await apiPost<{ app_id: string; secret: string }>(request, token, '/admin/v1/apps', {
    tenant_id: tenant.tenant_id,
    name,
  });
  return { token, app };
}

/** A /v1 call as the app's backend, retried until the cell knows the new key (within a second or so). */
async function v1(request: APIRequestContext, secret: string, method: 'GET' | 'POST', path: string, data?: unknown) {
  let body: unknown;
  await expect
    .poll(async () => {
      const r = await request.fetch(`${apiUrl()}${path}`, { method, headers: { Authorization: `Bearer ${secret}` }, data });
      body = await r.json().catch(() => null);
      // 401: the cell does not know the new key yet.
      return r.status() === 401 ? 999 : r.status();
    })
    .toBeLessThan(300);
  return body as Record<string, unknown>;
}

test('groups: find a group by id, page its members, mute a member and everyone, dismiss it (confirmed)', async ({ page, request }) => {
  const { app } = await newApp(request, 'grouped');
  const groupId = unique('team');
  await v1(request, app.secret, 'POST', '/v1/groups', {
    group_id: groupId,
    owner: 'alice',
    members: ['bob', 'carol'],
    name: 'Team E2E',
    announcement: 'Standup at ten',
  });

  await signIn(page);
  await page.goto(`/console/apps/${app.app_id}`);
  await page.getByRole('tab', { name: 'Groups' }).click();
  await expect(page).toHaveURL(/\/groups$/);
  // Validated before the lookup.
  await page.getByLabel('Group id').fill('no spaces allowed');
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page.getByText('A group id: 1 to 64 letters, digits or _ . @ -')).toBeVisible();
  // An unknown group: the API's message.
  await page.getByLabel('Group id').fill('never-made');
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page.getByRole('alert')).toBeVisible();

  // The group by id; the URL can be bookmarked.
  await page.getByLabel('Group id').fill(`group:${groupId}`);
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page).toHaveURL(new RegExp(`groups\\?group=${groupId}$`));
  await expect(page.getByTestId('group-member-count')).toHaveText('3');
  await expect(page.getByText('Standup at ten')).toBeVisible();
  const members = page.getByRole('table', { name: 'Members' });
  await expect(members.getByTestId('member-alice')).toContainText('owner');
  await expect(members.getByTestId('member-alice').getByRole('button')).toHaveCount(0);

  // Mute bob for a day, by keyboard in the dialog.
  await members.getByRole('button', { name: 'Mute bob' }).click();
  const dialog = page.getByRole('dialog', { name: 'Mute bob' });
  await dialog.getByLabel('For').selectOption({ label: '1 day' });
  await dialog.getByRole('button', { name: 'Mute' }).focus();
  await page.keyboard.press('Enter');
  await expect(dialog).toBeHidden();
  await expect(members.getByRole('button', { name: 'Unmute bob' })).toBeVisible();
  const listed = await v1(request, app.secret, 'GET', `/v1/groups/${groupId}/members`);
  const bob = (listed.items as { user_id: string; muted_until: string | null }[]).find((m) => m.user_id === 'bob');
  const until = Date.parse(bob?.muted_until ?? '');
  expect(until - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
  expect(until - Date.now()).toBeLessThan(25 * 3600 * 1000);

  // Mute everyone: asked first.
  await page.getByRole('button', { name: 'Mute all' }).click();
  await page.getByRole('dialog', { name: 'Mute all' }).getByRole('button', { name: 'Mute all' }).click();
  await expect(page.getByText('all muted')).toBeVisible();
  expect((await v1(request, app.secret, 'GET', `/v1/groups/${groupId}`)).mute_all).toBe(true);
  await shoot(page, 'groups-en');
  await page.reload();
  await expect(page.getByTestId('group-member-count')).toHaveText('3');
  await setLang(page, 'zh');
  await expect(page.getByText('全员禁言中')).toBeVisible();
  await shoot(page, 'groups-zh');
  await setLang(page, 'en');

  // Dismissing asks for the id; cancel keeps the group.
  await page.getByRole('button', { name: 'Dismiss group' }).click();
  const confirm = page.getByRole('dialog', { name: 'Dismiss group' });
  await expect(confirm.getByRole('button', { name: 'Dismiss' })).toBeDisabled();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('group-member-count')).toHaveText('3');
  await page.getByRole('button', { name: 'Dismiss group' }).click();
  await confirm.getByLabel(/Type the name to confirm/).fill(groupId);
  await confirm.getByRole('button', { name: 'Dismiss' }).click();
  await expect(page.getByText(`Group ${groupId} dismissed`)).toBeVisible();
  await expect(page).toHaveURL(/\/groups$/);
  const gone = await request.get(`${apiUrl()}/v1/groups/${groupId}`, { headers: { Authorization: `Bearer ${app.secret}` } });
  expect(gone.status()).toBe(404);
});

test("groups: another tenant's admin cannot open this app's groups", async ({ page, request }) => {
  const { token, app } = await newApp(request, 'private-groups');
  const other = await apiPost<{ tenant_id: string }>(request, token, '/admin/v1/tenants', { name: unique('other') });
  const username = unique('admin');
  await apiPost(request, token, '/admin/v1/accounts', {
    username,
    password: 'other-admin-password',
    role: 'tenant_admin',
    tenant_id: other.tenant_id,
  });
  const theirs = await apiToken(request, username, 'other-admin-password');
  const r = await request.get(`${apiUrl()}/admin/v1/apps/${app.app_id}/groups/anything`, {
    headers: { Authorization: `Bearer ${theirs}` },
  });
  expect(r.status()).toBe(404);
  await signIn(page, username, 'other-admin-password');
  await page.goto(`/console/apps/${app.app_id}/groups?group=anything`);
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByRole('tab', { name: 'Groups' })).toHaveCount(0);
});

test('push: a test push to a local fake provider shows its outcome; dead letters are listed', async ({ page, request }) => {
  const { token, app } = await newApp(request, 'push-test');
  const put = await request.put(`${apiUrl()}/admin/v1/apps/${app.app_id}/push-credentials/xiaomi`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { app_secret: FAKE_PUSH.secret, package: 'com.example.e2e' },
  });
  expect(put.status(), await put.text()).toBe(200);

  await signIn(page);
  await page.goto(`/console/apps/${app.app_id}/push`);
  await expect(page.getByTestId('empty')).toContainText('No push was given up on.');
  // Validated before sending.
  await page.getByRole('button', { name: 'Send test push' }).click();
  await expect(page.getByText('Enter a device token')).toBeVisible();
  // The configured vendor is picked first.
  await expect(page.getByLabel('Vendor', { exact: true })).toHaveValue('xiaomi');
  await page.getByLabel('Device token').fill(FAKE_PUSH.goodToken);
  await page.getByRole('button', { name: 'Send test push' }).click();
  const outcome = page.getByTestId('test-push-outcome');
  await expect(outcome).toContainText('Accepted by the provider');
  await page.getByLabel('Device token').fill('a-token-the-provider-does-not-know');
  await page.getByRole('button', { name: 'Send test push' }).click();
  await expect(outcome).toContainText('The provider says this token is invalid');
  await expect(outcome).toContainText('Invalid regId');
  // A vendor without credentials.
  await page.getByLabel('Vendor', { exact: true }).selectOption('huawei');
  await page.getByRole('button', { name: 'Send test push' }).click();
  await expect(outcome).toContainText('No credentials for this vendor');
  await page.getByLabel('Vendor', { exact: true }).selectOption('xiaomi');
  await page.getByLabel('Device token').fill(FAKE_PUSH.goodToken);
  await page.getByRole('button', { name: 'Send test push' }).click();
  await expect(outcome).toContainText('Accepted by the provider');
  await shoot(page, 'push-test-en');
});

// FIXME: the WebSocket from about:blank to /v1/connect fails in Chromium
// here ("error" before any reply); not yet known why (Origin check?).
test('push: a push the worker gives up on is listed on the push tab', async ({ page, request, browser }) => {
  const { token, app } = await newApp(request, 'push-dead');
  const put = await request.put(`${apiUrl()}/admin/v1/apps/${app.app_id}/push-credentials/xiaomi`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { app_secret: FAKE_PUSH.secret, package: 'com.example.e2e' },
  });
  expect(put.status(), await put.text()).toBe(200);
  await signIn(page);
  await page.goto(`/console/apps/${app.app_id}/push`);
  await expect(page.getByTestId('empty')).toContainText('No push was given up on.');

  // A real push that fails for good: bob's phone registers the token the
  // provider refuses (over the wire, from a blank page), goes offline, and
  // alice writes to him until the worker has given up on a push.
  const minted = await v1(request, app.secret, 'POST', '/v1/users/bob/tokens', {});
  // Retried: the new app's config reaches the node a moment after it is
  // created, and a login before that is refused.
  await expect(async () => {
    const context = await browser.newContext();
    const wire = await context.newPage();
    const registered = await wire.evaluate(
      async ({ url, token, pushToken }) =>
        new Promise<string>((ok) => {
          const ws = new WebSocket(url, 'confab.v1.json');
          const replies: string[] = [];
          ws.onopen = () => ws.send(JSON.stringify({ op: 'login', rid: 1, token, device_id: 'bob-phone', platform: 'android' }));
          ws.onmessage = (m) => {
            const f = JSON.parse(String(m.data)) as { op: string; rid?: number; ok?: boolean };
            if (f.op !== 'reply') return;
            replies.push(`${f.rid}:${f.ok}`);
            if (f.rid === 1 && f.ok)
              ws.send(JSON.stringify({ op: 'push_register', rid: 2, vendor: 'xiaomi', push_token: pushToken, bundle: 'com.example.e2e' }));
            if (f.rid === 2 || !f.ok) {
              ws.close();
              ok(replies.join(','));
            }
          };
          ws.onerror = () => ok(`error after ${replies.join(',')}`);
        }),
      { url: `${apiUrl().replace(/^http/, 'ws')}/v1/connect`, token: minted.token as string, pushToken: FAKE_PUSH.failToken },
    );
    await context.close();
    expect(registered).toBe('1:true,2:true');
  }).toPass({ timeout: 15_000 });
  let n = 0;
  await expect
    .poll(
      async () => {
        n += 1;
        await v1(request, app.secret, 'POST', '/v1/messages', {
          from: 'alice',
          to: { kind: 'user', id: 'bob' },
          body: { type: 'text', text: `ping ${n}` },
          client_msg_id: `push-${n}`,
        });
        const dead = await apiGet<{ items: unknown[] }>(request, token, `/admin/v1/apps/${app.app_id}/push-dead-letters`);
        return dead.items.length;
      },
      { timeout: 30_000 },
    )
    .toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Refresh' }).last().click();
  const table = page.getByRole('table', { name: 'Push dead letters' });
  await expect(table).toContainText('bob-phone');
  await expect(table).toContainText('message payload is not acceptable');
  await shoot(page, 'push-dead-letters-en');
  await setLang(page, 'zh');
  await expect(page.getByRole('table', { name: '推送死信' })).toContainText('bob-phone');
  await shoot(page, 'push-dead-letters-zh');
  await setLang(page, 'en');
});
