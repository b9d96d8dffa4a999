import { mkdirSync } from 'node:fs';
import type { Browser, Page } from '@playwright/test';
import { apiPost, apiToken, apiUrl, expect, signIn, test, unique } from './fixtures';

const DOCS = '../docs/console';

async function shoot(page: Page, name: string) {
  mkdirSync(DOCS, { recursive: true });
  await page.waitForTimeout(400);
  await page.screenshot({ path: `${DOCS}/${name}.png`, fullPage: true });
}

async function setLang(page: Page, lang: 'en' | 'zh') {
  await page.evaluate((l) => localStorage.setItem('confab.lang', l), lang);
  await page.reload();
}

/**
 * Logs `from` in over the wire protocol (WebSocket, JSON) and sends `n` text
 * messages to `to`, waiting for each reply. Runs in a blank page of its own
 * (no console CSP): the browser's WebSocket is the client.
 */
async function sendOverTheWire(browser: Browser, secret: string, from: string, to: string, n: number) {
  const tokenReply = await fetch(`${apiUrl()}/v1/users/${from}/tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
    body: '{}',
  });
  expect(tokenReply.status, await tokenReply.clone().text()).toBe(201);
  const { token } = (await tokenReply.json()) as { token: string };
  const context = await browser.newContext();
  const page = await context.newPage();
  const url = `${apiUrl().replace(/^http/, 'ws')}/v1/connect`;
  const replies = await page.evaluate(
    ({ url, token, to, n }) =>
      new Promise<unknown[]>((resolve, reject) => {
        const ws = new WebSocket(url, 'confab.v1.json');
        const got: unknown[] = [];
        ws.onerror = () => reject(new Error('websocket error'));
        ws.onopen = () => ws.send(JSON.stringify({ op: 'login', rid: 1, token, device_id: 'e2e-web', platform: 'web' }));
        ws.onmessage = (e) => {
          const f = JSON.parse(String(e.data)) as { op: string; rid?: number; ok?: boolean };
          if (f.op !== 'reply') return;
          got.push(f);
          if (!f.ok) return reject(new Error(String(e.data)));
          if (f.rid === 1) {
            for (let i = 0; i < n; i++) {
              ws.send(JSON.stringify({ op: 'send', rid: 2 + i, to: { kind: 'user', id: to }, client_msg_id: `c-${i}`, body: { type: 'text', text: `hello ${i}` } }));
            }
          } else if (got.length === n + 1) {
            ws.close();
            resolve(got);
          }
        };
      }),
    { url, token, to, n },
  );
  await context.close();
  expect(replies).toHaveLength(n + 1);
}

test('the dashboard shows a number that moved after traffic', async ({ page, request, browser }) => {
  const admin = await apiToken(request);
  const tenant = await apiPost<{ tenant_id: string }>(request, admin, '/admin/v1/tenants', { name: unique('dash') });
  const app = await apiPost<{ app_id: string; secret: string }>(request, admin, '/admin/v1/apps', {
    tenant_id: tenant.tenant_id,
    name: 'dashboard',
  });
  await signIn(page);
  await page.goto(`/console/apps/${app.app_id}`);
  await page.getByRole('tab', { name: 'Dashboard' }).click();
  await expect(page).toHaveURL(/\/apps\/app_[^/]+\/dashboard/);
  // Nothing yet: the empty state.
  await expect(page.getByTestId('empty')).toHaveText('No traffic in this range yet.');
  await page.locator('label', { hasText: '1 hour' }).click();
  await expect(page).toHaveURL(/range=1h/);

  // Traffic over the wire (the new app's config reaches the node first).
  await expect(async () => sendOverTheWire(browser, app.secret, 'alice', 'bob', 3)).toPass({ timeout: 15_000 });

  // The counters are flushed every 500 ms in this server (CONFAB_USAGE_FLUSH_MS).
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId('total-messages')).toHaveText('3', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.getByTestId('dau-today')).toHaveText('1');
  await expect(page.getByTestId('total-logins')).toHaveText('1');
  await shoot(page, 'dashboard-en');
  await setLang(page, 'zh');
  await expect(page.getByTestId('total-messages')).toHaveText('3');
  await shoot(page, 'dashboard-zh');

  // The operator's platform dashboard: the cell's sums include this app's.
  await setLang(page, 'en');
  await page.goto('/console/platform?range=1h');
  await expect(page.getByTestId('cell-apps')).toContainText('cell default');
  const total = Number((await page.getByTestId('total-messages').textContent())?.replace(/,/g, ''));
  expect(total).toBeGreaterThanOrEqual(3);
  await shoot(page, 'platform-en');
  await setLang(page, 'zh');
  await expect(page.getByTestId('cell-apps')).toContainText('default');
  await shoot(page, 'platform-zh');
  await setLang(page, 'en');
});
