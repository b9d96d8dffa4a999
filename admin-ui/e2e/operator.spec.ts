import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { apiGet, apiPatch, apiPost, apiToken, expect, signIn, test, unique } from './fixtures';

interface WordList {
  items: { word: string; action: string }[];
  next_cursor?: string | null;
}

/** Creates a tenant and an app through the UI; returns the app's page URL and id. */
async function createTenantAndApp(page: Page, tenant: string, app: string) {
  await page.goto('/console/tenants');
  await page.getByRole('button', { name: 'New tenant' }).click();
  const dialog = page.getByRole('dialog', { name: 'New tenant' });
  // Validated before submit: an empty name is refused in the form.
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog.getByText('Enter a name')).toBeVisible();
  await dialog.getByLabel('Name').fill(tenant);
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog).toBeHidden();
  await page.getByTestId(`tenant-row-${tenant}`).getByRole('link', { name: tenant }).click();
  await expect(page.getByTestId('empty')).toContainText('No apps yet');

  await page.getByRole('button', { name: 'New app' }).click();
  const appDialog = page.getByRole('dialog', { name: 'New app' });
  await appDialog.getByLabel('Name').fill(app);
  await appDialog.getByRole('button', { name: 'Create' }).click();
  const secretDialog = page.getByRole('dialog', { name: 'App created' });
  const secret = (await secretDialog.getByTestId('secret').textContent())!;
  expect(secret).toMatch(/^sk_[0-9a-f]{20,}$/);
  await expect(secretDialog.getByRole('button', { name: 'Copy', exact: true })).toBeVisible();
  return { secret, secretDialog };
}

test('create a tenant and an app: the secret is shown once', async ({ page, context, baseURL }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  await signIn(page);
  const tenant = unique('acme');
  const { secret, secretDialog } = await createTenantAndApp(page, tenant, 'chat');
  // The copy button puts the secret on the clipboard.
  await secretDialog.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(secretDialog.getByRole('button', { name: 'Copied', exact: true })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  await page.waitForTimeout(500); // the dialog's fade-in, for the picture
  await page.screenshot({ path: 'e2e/screenshots/secret-once.png' });
  await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
  await expect(secretDialog).toBeHidden();
  await expect(page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: 'chat' })).toBeVisible();
  // Nowhere on the page, nor after a reload, nor in storage.
  await expect(page.getByText(secret)).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole('table', { name: 'Apps' })).toBeVisible();
  expect(await page.content()).not.toContain(secret);
  const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
  expect(stored).not.toContain(secret);
});

test('rotate and revoke a key, with confirmation', async ({ page }) => {
  await signIn(page);
  const { secretDialog } = await createTenantAndApp(page, unique('keys'), 'keyed');
  await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
  await page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: 'keyed' }).click();
  await page.getByRole('tab', { name: 'Keys' }).click();
  await expect(page).toHaveURL(/\/apps\/app_[^/]+\/keys$/);
  const rows = page.getByRole('table', { name: 'Keys' }).locator('tbody tr');
  await expect(rows).toHaveCount(1);
  const oldKey = (await rows.first().locator('code').textContent())!;

  // Rotate: a second key, its secret shown once.
  await page.getByRole('button', { name: /Rotate/ }).click();
  const dialog = page.getByRole('dialog', { name: 'New key created' });
  await expect(dialog.getByTestId('secret')).toHaveText(/^sk_/);
  await dialog.getByRole('button', { name: 'I have stored it' }).click();
  await expect(rows).toHaveCount(2);
  // Two active keys: no third until one is revoked.
  await expect(page.getByRole('button', { name: /Rotate/ })).toBeDisabled();

  // Revoke the old key: cancel first (nothing happens), then confirm.
  await page.getByRole('button', { name: `Revoke ${oldKey}` }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke key' });
  await expect(confirm).toContainText(oldKey);
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(confirm).toBeHidden();
  await expect(page.getByTestId(`key-row-${oldKey}`)).toContainText('active');
  await page.getByRole('button', { name: `Revoke ${oldKey}` }).click();
  await confirm.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByTestId(`key-row-${oldKey}`)).toContainText('revoked');
  await expect(page.getByRole('button', { name: /Rotate/ })).toBeEnabled();
  await page.screenshot({ path: 'e2e/screenshots/keys.png', fullPage: true });
});

test('sensitive words: add a blocked word (checked over the API), bulk import from a file', async ({ page, request }) => {
  await signIn(page);
  const { secretDialog } = await createTenantAndApp(page, unique('words'), 'filtered');
  await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
  await page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: 'filtered' }).click();
  const appId = /\/apps\/(app_[^/]+)/.exec(page.url())![1];
  await page.getByRole('tab', { name: 'Sensitive words' }).click();
  await expect(page.getByTestId('empty')).toHaveText('The list is empty.');

  // Add: validated before submit, then block.
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(page.getByText('Enter a word')).toBeVisible();
  await page.getByRole('textbox', { name: 'Word' }).fill('forbiddenword');
  await page.locator('label', { hasText: 'Block' }).first().click();
  await expect(page.getByRole('radio', { name: 'Block' })).toBeChecked();
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(page.getByTestId('word-row').filter({ hasText: 'forbiddenword' })).toContainText('block');

  const token = await apiToken(request);
  const list = await apiGet<WordList>(request, token, `/admin/v1/apps/${appId}/words`);
  expect(list.items).toContainEqual({ word: 'forbiddenword', action: 'block' });

  // Bulk import: a text file, one word per line, with actions and a comment.
  const dir = mkdtempSync(join(tmpdir(), 'words-'));
  const file = join(dir, 'words.txt');
  writeFileSync(file, '# imported\nalphaword\nbetaword,mask\ngammaword\tblock\n\n');
  await page.getByRole('combobox', { name: 'Action of lines that name none' }).click();
  await page.getByRole('option', { name: 'Mask' }).click();
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: /Import from a text file/ }).click();
  await (await chooser).setFiles(file);
  await expect(page.getByText(/Imported 3 lines; the list has 4 words/)).toBeVisible();
  await expect(page.getByTestId('word-row')).toHaveCount(4);
  const after = await apiGet<WordList>(request, token, `/admin/v1/apps/${appId}/words`);
  expect(after.items).toEqual(
    expect.arrayContaining([
      { word: 'alphaword', action: 'mask' },
      { word: 'betaword', action: 'mask' },
      { word: 'gammaword', action: 'block' },
      { word: 'forbiddenword', action: 'block' },
    ]),
  );
  await page.screenshot({ path: 'e2e/screenshots/words.png', fullPage: true });

  // Remove, confirmed.
  await page.getByRole('button', { name: 'Remove alphaword' }).click();
  await page.getByRole('dialog', { name: 'Remove word' }).getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByTestId('word-row')).toHaveCount(3);
});

test('a gray rule with a preview of the share it moves', async ({ page, request }) => {
  await signIn(page);
  const token = await apiToken(request);
  const apps = await apiGet<{ items: { app_id: string; name: string; tenant_id: string }[] }>(
    request,
    token,
    '/admin/v1/apps?tenant_id=default',
  );
  const app = apps.items[0];
  const release = unique('canary');
  await page.goto('/console/gray-rules');
  await page.getByRole('button', { name: 'New rule' }).click();
  const dialog = page.getByRole('dialog', { name: 'New gray rule' });
  // Validation before anything is sent.
  await dialog.getByRole('button', { name: 'Create rule' }).click();
  await expect(dialog.getByText(/1 to 40 of letters/)).toBeVisible();
  await dialog.getByLabel('Release').fill(release);
  await dialog.getByRole('textbox', { name: 'Percent of matching users' }).fill('30');
  await dialog.getByRole('combobox', { name: 'App', exact: true }).click();
  await page.getByRole('option', { name: new RegExp(app.app_id) }).click();
  await dialog.getByRole('button', { name: 'Preview share' }).click();
  const result = dialog.getByTestId('preview-result');
  await expect(result).toContainText('of 10,000 sampled');
  const share = Number(/Would move ([\d.]+)%/.exec((await result.textContent())!)![1]);
  expect(share).toBeGreaterThan(27);
  expect(share).toBeLessThan(33);
  // Same as the API's own preview.
  const api = await apiPost<{ share: number }>(request, token, '/admin/v1/gray-rules/preview', {
    rule: { release, percent: 30, app_id: app.app_id },
    app_id: app.app_id,
    sample: 10000,
  });
  // The page shows one decimal: it may differ from the API's value by the
  // rounding, up to 0.05 percentage points (plus float noise).
  expect(Math.abs(share - api.share * 100)).toBeLessThanOrEqual(0.05 + 1e-9);
  await page.waitForTimeout(300);
  await page.screenshot({ path: 'e2e/screenshots/gray-preview.png' });
  await dialog.getByRole('button', { name: 'Create rule' }).click();
  await expect(dialog).toBeHidden();
  const row = page.getByTestId(`rule-${release}`);
  await expect(row).toContainText('30%');

  // Edit it, then delete it (confirmed).
  await row.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('dialog', { name: /Edit rule/ });
  await edit.getByRole('textbox', { name: 'Percent of matching users' }).fill('50');
  await edit.getByRole('button', { name: 'Save rule' }).click();
  await expect(row).toContainText('50%');
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete rule' }).getByRole('button', { name: 'Delete' }).click();
  await expect(row).toHaveCount(0);
});

test("a refused change shows the API's message", async ({ page, request }) => {
  await signIn(page);
  const token = await apiToken(request);
  // What the API says to a second tenant named `default`.
  const r = await request.post(`${process.env.E2E_API_URL}/admin/v1/tenants`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { name: 'default' },
  });
  expect(r.ok()).toBe(false);
  const message = ((await r.json()) as { error: { message: string } }).error.message;
  await page.goto('/console/tenants');
  await page.getByRole('button', { name: 'New tenant' }).click();
  const dialog = page.getByRole('dialog', { name: 'New tenant' });
  await dialog.getByLabel('Name').fill('default');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('alert').filter({ hasText: message })).toBeVisible();
  await expect(dialog).toBeVisible(); // kept open to fix the input
});

test('cells: declare one, assign a tenant to it, refused delete while in use, then delete', async ({ page, request }) => {
  await signIn(page);
  const token = await apiToken(request);
  const tenant = await apiPost<{ tenant_id: string; name: string }>(request, token, '/admin/v1/tenants', {
    name: unique('mover'),
  });
  const cell = unique('cell');
  await page.goto('/console/cells');
  await page.getByRole('button', { name: 'New cell' }).click();
  const dialog = page.getByRole('dialog', { name: 'New cell' });
  await dialog.getByLabel('Cell id').fill('bad cell id');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog.getByText(/1 to 40 of letters/)).toBeVisible();
  await dialog.getByLabel('Cell id').fill(cell);
  await dialog.getByLabel('Description').fill('e2e cell');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('table', { name: 'Cells' })).toContainText(cell);

  // Assign the tenant to it.
  await page.goto('/console/tenants');
  const row = page.getByTestId(`tenant-row-${tenant.name}`);
  await row.getByRole('button', { name: 'Cell…' }).click();
  const assign = page.getByRole('dialog', { name: /Assign .* to a cell/ });
  await assign.getByRole('combobox', { name: 'Cell' }).click();
  await page.getByRole('option', { name: cell }).click();
  await assign.getByRole('button', { name: 'Assign' }).click();
  await expect(row).toContainText(cell);
  const moved = await apiGet<{ cell_id: string }>(request, token, `/admin/v1/tenants/${tenant.tenant_id}`);
  expect(moved.cell_id).toBe(cell);

  // A cell in use cannot go: the API says why, and the console shows that.
  const refused = await request.delete(`${process.env.E2E_API_URL}/admin/v1/cells/${cell}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(refused.ok()).toBe(false);
  const why = ((await refused.json()) as { error: { message: string } }).error.message;
  await page.goto('/console/cells');
  const cellRow = page.getByRole('row').filter({ hasText: cell });
  await expect(cellRow.getByRole('cell').nth(2)).toHaveText('1');
  await cellRow.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete cell' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('alert').filter({ hasText: why })).toBeVisible();
  await expect(page.getByRole('table', { name: 'Cells' })).toContainText(cell);
  await page.getByRole('dialog', { name: 'Delete cell' }).getByRole('button', { name: 'Cancel' }).click();

  // Back to default; then the cell can be deleted.
  await apiPatch(request, token, `/admin/v1/tenants/${tenant.tenant_id}`, { cell_id: 'default' });
  await page.reload();
  await cellRow.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete cell' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('table', { name: 'Cells' })).not.toContainText(cell);
});

test('global words (operator): add a masked word, checked over the API', async ({ page, request }) => {
  await signIn(page);
  await page.getByRole('link', { name: 'Global words' }).click();
  await expect(page.getByRole('heading', { name: 'Global sensitive words' })).toBeVisible();
  const word = unique('globalword').replace(/-/g, '');
  await page.getByRole('textbox', { name: 'Word' }).fill(word);
  await page.locator('label', { hasText: 'Mask' }).first().click();
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(page.getByTestId('word-row').filter({ hasText: word })).toContainText('mask');
  const token = await apiToken(request);
  const list = await apiGet<WordList>(request, token, '/admin/v1/words?limit=200');
  expect(list.items).toContainEqual({ word, action: 'mask' });
});

test('an app: settings, quotas, suspend and resume, delete with typed confirmation', async ({ page, request }) => {
  await signIn(page);
  const token = await apiToken(request);
  const tenant = await apiPost<{ tenant_id: string }>(request, token, '/admin/v1/tenants', { name: unique('life') });
  const app = await apiPost<{ app_id: string }>(request, token, '/admin/v1/apps', {
    tenant_id: tenant.tenant_id,
    name: 'lifecycle',
  });
  await page.goto(`/console/apps/${app.app_id}/settings`);

  // Settings: kick policy and recall window.
  await page.getByRole('combobox', { name: 'Kick policy' }).click();
  await page.getByRole('option', { name: 'One device in all' }).click();
  await page.getByRole('textbox', { name: 'Recall window (seconds)' }).fill('');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByText(/0 to 604800 seconds/)).toBeVisible();
  await page.getByRole('textbox', { name: 'Recall window (seconds)' }).fill('300');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByText('Settings saved')).toBeVisible();
  type AppBody = { status: string; settings: { kick_policy: string; recall_window_ms: number } };
  let got = await apiGet<AppBody>(request, token, `/admin/v1/apps/${app.app_id}`);
  expect(got.settings.kick_policy).toBe('one_in_all');
  expect(got.settings.recall_window_ms).toBe(300_000);

  // Quotas (operator).
  await page.getByRole('tab', { name: 'Quotas' }).click();
  await expect(page).toHaveURL(/\/quotas$/);
  await page.getByRole('textbox', { name: 'Concurrent connections (per cell)' }).fill('1234');
  await page.getByRole('button', { name: 'Save quotas' }).click();
  await expect(page.getByText('Quotas saved')).toBeVisible();
  const quotas = await apiGet<{ max_connections: number }>(request, token, `/admin/v1/apps/${app.app_id}/quotas`);
  expect(quotas.max_connections).toBe(1234);
  // A bookmark of the tab opens it again.
  await page.reload();
  await expect(page.getByRole('textbox', { name: 'Concurrent connections (per cell)' })).toHaveValue('1 234');

  // Suspend (confirmed) and resume.
  await page.getByRole('button', { name: 'Suspend' }).click();
  await page.getByRole('dialog', { name: 'Suspend app' }).getByRole('button', { name: 'Suspend' }).click();
  await expect(page.getByRole('heading', { name: /lifecycle/ })).toContainText('suspended');
  got = await apiGet<AppBody>(request, token, `/admin/v1/apps/${app.app_id}`);
  expect(got.status).toBe('suspended');
  await page.getByRole('button', { name: 'Resume' }).click();
  await expect(page.getByRole('heading', { name: /lifecycle/ })).toContainText('active');

  // Delete: the name must be typed.
  await page.getByRole('button', { name: 'Delete app' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete app' });
  const confirm = dialog.getByRole('button', { name: 'Delete' });
  await expect(confirm).toBeDisabled();
  await dialog.getByLabel(/to confirm/).fill('lifecycle');
  await confirm.click();
  await expect(page).toHaveURL(new RegExp(`/console/tenants/${tenant.tenant_id}$`));
  await expect(page.getByTestId('empty')).toBeVisible();
  const gone = await request.get(`${process.env.E2E_API_URL}/admin/v1/apps/${app.app_id}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(gone.status()).toBe(404);
});
