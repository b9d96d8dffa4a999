import { apiPost, apiToken, expect, signIn, test, unique } from './fixtures';

test('a tenant admin created by the operator sees only its own tenant', async ({ page, request }) => {
  const token = await apiToken(request);
  const mine = await apiPost<{ tenant_id: string; name: string }>(request, token, '/admin/v1/tenants', {
    name: unique('own'),
  });
  const other = await apiPost<{ tenant_id: string; name: string }>(request, token, '/admin/v1/tenants', {
    name: unique('other'),
  });
  const otherApp = await apiPost<{ app_id: string }>(request, token, '/admin/v1/apps', {
    tenant_id: other.tenant_id,
    name: 'secret-project',
  });
  await apiPost(request, token, '/admin/v1/apps', { tenant_id: mine.tenant_id, name: 'mine-app' });

  // The operator creates the tenant admin in the console.
  await signIn(page);
  await page.getByRole('link', { name: 'Accounts' }).click();
  await page.getByRole('button', { name: 'New account' }).click();
  const dialog = page.getByRole('dialog', { name: 'New account' });
  const username = unique('ta');
  await dialog.getByLabel(/^User name/).fill(username);
  await dialog.getByLabel(/^Password/).fill('short');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog.getByText('At least 10 characters')).toBeVisible();
  await expect(dialog.getByText('Choose the tenant it administers')).toBeVisible();
  const password = 'tenant-admin-password-1';
  await dialog.getByLabel(/^Password/).fill(password);
  await dialog.getByRole('combobox', { name: /^Tenant/ }).click();
  await page.getByRole('option', { name: mine.name }).click();
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('table', { name: 'Accounts' })).toContainText(username);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/console\/login$/);

  // The tenant admin lands on its own tenant's apps.
  await signIn(page, username, password);
  await expect(page).toHaveURL(new RegExp(`/console/tenants/${mine.tenant_id}$`));
  await expect(page.getByRole('heading', { name: new RegExp(mine.name) })).toBeVisible();
  await expect(page.getByRole('table', { name: 'Apps' })).toContainText('mine-app');
  const nav = page.getByRole('navigation', { name: 'Main navigation' });
  await expect(nav.getByRole('link')).toHaveText(['Apps', 'Accounts']);
  await page.screenshot({ path: 'e2e/screenshots/tenant-admin.png', fullPage: true });

  // Another tenant's pages, by URL: the API says not found, nothing of it shows.
  await page.goto(`/console/tenants/${other.tenant_id}`);
  await expect(page.getByRole('alert')).toContainText(/not found|no tenant/i);
  await expect(page.getByText(other.name)).toHaveCount(0);
  await page.goto(`/console/apps/${otherApp.app_id}/keys`);
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByText('secret-project')).toHaveCount(0);
  // Operator pages are closed.
  for (const path of ['tenants', 'cells', 'gray-rules', 'words']) {
    await page.goto(`/console/${path}`);
    await expect(page.getByText('Only an operator can open this page.')).toBeVisible();
  }
  // Its own app's quotas are read-only.
  await page.goto(`/console/tenants/${mine.tenant_id}`);
  await page.getByRole('link', { name: 'mine-app' }).click();
  await page.getByRole('tab', { name: 'Quotas' }).click();
  await expect(page.getByRole('button', { name: 'Save quotas' })).toHaveCount(0);
  await page.getByRole('tab', { name: 'Settings' }).click();
  await expect(page.getByLabel('Recall window (seconds)')).toBeDisabled();
  // The kick policy is its own to change.
  await page.getByRole('combobox', { name: 'Kick policy' }).click();
  await page.getByRole('option', { name: 'Unlimited devices' }).click();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByText('Settings saved')).toBeVisible();
  // And it creates an app of its own, with the secret shown once.
  await page.getByRole('link', { name: 'Apps' }).first().click();
  await page.getByRole('button', { name: 'New app' }).click();
  await page.getByRole('dialog', { name: 'New app' }).getByLabel('Name').fill('second-app');
  await page.getByRole('dialog', { name: 'New app' }).getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('dialog', { name: 'App created' }).getByTestId('secret')).toHaveText(/^sk_/);
});
