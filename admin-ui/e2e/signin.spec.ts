import { expect, expectNoHorizontalOverflow, operatorPassword, signIn, test } from './fixtures';

test('a wrong password shows the API message; the right one signs in; sign out', async ({ page }) => {
  await page.goto('/console/');
  await expect(page).toHaveURL(/\/console\/login/);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const error = page.getByTestId('signin-error');
  await expect(error).toBeVisible();
  // The API's own message, not a generic one.
  const api = await page.request.post('/admin/v1/sessions', { data: { username: 'admin', password: 'not-the-password' } });
  expect(api.status()).toBe(401);
  const message = ((await api.json()) as { error: { message: string } }).error.message;
  expect(message.length).toBeGreaterThan(0);
  await expect(error).toHaveText(message);

  await page.getByLabel('Password', { exact: true }).fill(operatorPassword());
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/console\/tenants$/);
  await expect(page.getByRole('heading', { name: 'Tenants' })).toBeVisible();
  await expect(page.getByTestId('tenant-row-default')).toBeVisible();
  await page.screenshot({ path: 'e2e/screenshots/tenants-1280.png', fullPage: true });

  // The session is an HttpOnly, SameSite=Strict cookie: it survives a reload,
  // no script can read it, nothing of it is in web storage; signing out ends it.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Tenants' })).toBeVisible();
  const cookie = (await page.context().cookies()).find((c) => c.name === 'confab_session');
  expect(cookie?.value).toMatch(/^cs_/);
  expect(cookie?.httpOnly).toBe(true);
  expect(cookie?.sameSite).toBe('Strict');
  const token = cookie!.value;
  expect(await page.evaluate(() => document.cookie)).not.toContain(token);
  expect(await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }))).not.toContain(token);
  // A change without the CSRF header is refused, even with the cookie.
  const forged = await page.request.post('/admin/v1/tenants', { data: { name: 'forged' } });
  expect(forged.status()).toBe(403);
  expect((await forged.json()).error.code).toBe('csrf_failed');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/console\/login/);
  expect((await page.context().cookies()).find((c) => c.name === 'confab_session')).toBeUndefined();
  const after = await page.request.get('/admin/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(after.status()).toBe(401);
});

test('keyboard-only sign-in', async ({ page }) => {
  await page.goto('/console/login');
  // The user name field has focus on load; everything else by Tab and Enter.
  await expect(page.getByLabel('User name')).toBeFocused();
  await page.keyboard.type('admin');
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Password', { exact: true })).toBeFocused();
  await page.keyboard.type(operatorPassword());
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { name: 'Tenants' })).toBeVisible();
  // Keyboard navigation: the skip link comes first, then the header's link.
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
  // A dialog by keyboard: open, validate, close with Escape; focus stays usable.
  await page.getByRole('button', { name: 'New tenant' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'New tenant' });
  await expect(dialog.getByLabel('Name')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(dialog.getByText('Enter a name')).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
});

test('a deep link survives sign-in and is bookmarkable', async ({ page }) => {
  await page.goto('/console/cells');
  await expect(page).toHaveURL(/\/console\/login\?next=%2Fcells/);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(operatorPassword());
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/console\/cells$/);
  await expect(page.getByRole('heading', { name: 'Cells' })).toBeVisible();
  await expect(page.getByRole('cell', { name: 'default', exact: true })).toBeVisible();
});

test.describe('phone width', () => {
  test.use({ viewport: { width: 390, height: 844 } });
  test('no horizontal overflow; navigation behind the burger', async ({ page }) => {
    await page.goto('/console/login');
    await expectNoHorizontalOverflow(page);
    await signIn(page);
    await expect(page.getByRole('heading', { name: 'Tenants' })).toBeVisible();
    await expectNoHorizontalOverflow(page);
    await page.screenshot({ path: 'e2e/screenshots/tenants-390.png', fullPage: true });
    await page.getByRole('button', { name: 'Toggle navigation' }).click();
    await page.getByRole('link', { name: 'Gray release' }).click();
    await expect(page.getByRole('heading', { name: 'Gray release' })).toBeVisible();
    await expectNoHorizontalOverflow(page);
    // The default tenant, its app and the app's tabs.
    await page.goto('/console/tenants');
    await page.getByRole('link', { name: 'default', exact: true }).click();
    await expect(page.getByRole('table', { name: 'Apps' })).toBeVisible();
    await expectNoHorizontalOverflow(page);
    await page.getByRole('table', { name: 'Apps' }).getByRole('link').first().click();
    await expect(page.getByRole('tab', { name: 'Settings' })).toBeVisible();
    await expectNoHorizontalOverflow(page);
    await page.screenshot({ path: 'e2e/screenshots/app-390.png', fullPage: true });
    for (const tab of ['Quotas', 'Sensitive words', 'Push', 'Users', 'Conversations', 'Keys']) {
      await page.getByRole('tab', { name: tab }).click();
      await expect(page.getByRole('tab', { name: tab })).toHaveAttribute('aria-selected', 'true');
      await expectNoHorizontalOverflow(page);
    }
    // The secret dialog fits a phone too.
    await page.getByRole('button', { name: /Rotate/ }).click();
    const dialog = page.getByRole('dialog', { name: 'New key created' });
    await expect(dialog.getByTestId('secret')).toBeVisible();
    await expectNoHorizontalOverflow(page);
    await page.waitForTimeout(500); // the dialog's fade-in, for the picture
    await page.screenshot({ path: 'e2e/screenshots/secret-390.png' });
    await dialog.getByRole('button', { name: 'I have stored it' }).click();
  });
});

test('English and Simplified Chinese, switchable', async ({ page }) => {
  await page.goto('/console/login');
  await page.locator('label', { hasText: '中文' }).click();
  await expect(page.getByRole('heading', { name: '登录 Confab' })).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
  await page.getByLabel('用户名').fill('admin');
  await page.getByLabel('密码', { exact: true }).fill(operatorPassword());
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('heading', { name: '租户' })).toBeVisible();
  await expect(page.getByRole('link', { name: '灰度发布' })).toBeVisible();
  await page.screenshot({ path: 'e2e/screenshots/tenants-zh.png', fullPage: true });
  // Kept across a reload; back to English.
  await page.reload();
  await expect(page.getByRole('heading', { name: '租户' })).toBeVisible();
  await page.locator('label', { hasText: 'EN' }).click();
  await expect(page.getByRole('heading', { name: 'Tenants' })).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
});
