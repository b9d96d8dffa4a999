import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { apiGet, apiPost, apiToken, apiUrl, expect, signIn, test, unique } from './fixtures';

interface Received {
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

/** A real HTTP receiver on a free loopback port that records every request and answers 200. */
async function startReceiver(): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, raw: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/confab-hook`, got, server };
}

/** Whether the request is signed with `secret` as docs/webhooks.md says. */
function signedWith(r: Received, secret: string): boolean {
  const sig = String(r.headers['confab-signature'] ?? '');
  const parts = Object.fromEntries(sig.split(',').map((p) => p.split('=', 2) as [string, string]));
  const mac = createHmac('sha256', secret).update(`${parts.t}.`).update(r.raw).digest('hex');
  return parts.v1 === mac;
}

test('webhook: configure against a real receiver, secret once, test delivery listed, rotate, delete', async ({
  page,
  request,
}) => {
  const receiver = await startReceiver();
  try {
    const token = await apiToken(request);
    const tenant = await apiPost<{ tenant_id: string }>(request, token, '/admin/v1/tenants', { name: unique('hooks') });
    const app = await apiPost<{ app_id: string; secret: string }>(request, token, '/admin/v1/apps', {
      tenant_id: tenant.tenant_id,
      name: 'hooked',
    });
    // What the tenant's backend calls to send a signed `test` event now.
    const sendTest = async () => {
      const r = await request.post(`${apiUrl()}/v1/webhooks/test`, {
        headers: { Authorization: `Bearer ${app.secret}` },
      });
      expect(r.status(), await r.text()).toBe(200);
      return (await r.json()) as { event_id: string; delivered: boolean; status_code?: number | null };
    };

    await signIn(page);
    await page.goto(`/console/apps/${app.app_id}`);
    await page.getByRole('tab', { name: 'Webhook' }).click();
    await expect(page).toHaveURL(/\/apps\/app_[^/]+\/webhook$/);
    await expect(page.getByTestId('no-webhook')).toBeVisible();
    await expect(page.getByText('No deliveries yet.')).toBeVisible();
    await expect(page.getByText('No dead letters.')).toBeVisible();

    // Validated before submit: nothing reaches the API.
    await page.getByLabel('Endpoint URL').fill('ftp://nope');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await expect(page.getByText('Enter an https:// or http:// URL')).toBeVisible();
    const missing = await request.get(`${apiUrl()}/admin/v1/apps/${app.app_id}/webhook`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(missing.status()).toBe(404);

    // Create: URL, one more event, timeout and fail mode.
    await page.getByLabel('Endpoint URL').fill(receiver.url);
    await page.getByRole('checkbox', { name: 'user_online' }).check();
    await page.getByLabel('before_send timeout (ms)').fill('800');
    await page.getByRole('combobox', { name: 'before_send fail mode' }).click();
    await page.getByRole('option', { name: 'Closed' }).click();
    await page.getByRole('button', { name: 'Create webhook' }).click();
    const secretDialog = page.getByRole('dialog', { name: 'Webhook signing secret' });
    const secret = (await secretDialog.getByTestId('secret').textContent())!;
    expect(secret).toMatch(/^whsec_[0-9a-f]{64}$/);
    await expect(secretDialog.getByRole('button', { name: 'Copy', exact: true })).toBeVisible();
    await page.waitForTimeout(500); // the dialog's fade-in, for the picture
    await page.screenshot({ path: 'e2e/screenshots/webhook-secret.png' });
    await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
    await expect(secretDialog).toBeHidden();
    await expect(page.getByRole('button', { name: 'Rotate secret' })).toBeVisible();
    // Shown once: not on the page, nor after a reload, nor in the API's GET.
    await expect(page.getByText(secret)).toHaveCount(0);
    const saved = await apiGet<Record<string, unknown>>(request, token, `/admin/v1/apps/${app.app_id}/webhook`);
    expect(saved).toMatchObject({
      url: receiver.url,
      events: ['after_send', 'user_online'],
      timeout_ms: 800,
      fail_mode: 'closed',
    });
    expect(saved.secret ?? null).toBeNull();
    await page.reload();
    await expect(page.getByLabel('Endpoint URL')).toHaveValue(receiver.url);
    await expect(page.getByLabel('before_send timeout (ms)')).toHaveValue('800');
    expect(await page.content()).not.toContain(secret);

    // The test endpoint reaches the receiver, signed with that secret; the delivery is listed.
    const first = await sendTest();
    expect(first.delivered).toBe(true);
    const firstReq = receiver.got.find((r) => r.headers['confab-event-id'] === first.event_id)!;
    expect(firstReq).toBeDefined();
    expect(signedWith(firstReq, secret)).toBe(true);
    const deliveries = page.getByRole('table', { name: 'Deliveries' });
    await expect(async () => {
      await page.getByRole('button', { name: 'Refresh' }).first().click();
      await expect(deliveries.locator('tbody tr').first()).toContainText('test', { timeout: 1000 });
    }).toPass({ timeout: 15_000 });
    await expect(deliveries.locator('tbody tr').first()).toContainText('200');

    // Rotate: cancel changes nothing; confirmed, a new secret is shown once and signs from then on.
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const confirm = page.getByRole('dialog', { name: 'Rotate webhook secret' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await expect(confirm).toBeHidden();
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await confirm.getByRole('button', { name: 'Rotate' }).click();
    const rotated = (await secretDialog.getByTestId('secret').textContent())!;
    expect(rotated).toMatch(/^whsec_[0-9a-f]{64}$/);
    expect(rotated).not.toBe(secret);
    await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
    await expect(secretDialog).toBeHidden();
    // The nodes pick the new secret up within seconds.
    await expect(async () => {
      const t = await sendTest();
      const r = receiver.got.find((x) => x.headers['confab-event-id'] === t.event_id)!;
      expect(signedWith(r, rotated)).toBe(true);
    }).toPass({ timeout: 15_000 });
    await page.screenshot({ path: 'e2e/screenshots/webhook.png', fullPage: true });

    // Delete, confirmed: back to "no webhook", and the API agrees.
    await page.getByRole('button', { name: 'Delete webhook' }).click();
    await page.getByRole('dialog', { name: 'Delete webhook' }).getByRole('button', { name: 'Delete' }).click();
    await expect(page.getByTestId('no-webhook')).toBeVisible();
    const gone = await request.get(`${apiUrl()}/admin/v1/apps/${app.app_id}/webhook`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(gone.status()).toBe(404);
  } finally {
    receiver.server.close();
  }
});
