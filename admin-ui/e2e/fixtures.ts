import { test as base, expect, type APIRequestContext, type Page } from '@playwright/test';

export const OPERATOR = 'admin';
export const operatorPassword = () => process.env.E2E_OPERATOR_PASSWORD!;
export const apiUrl = () => process.env.E2E_API_URL!;

export const test = base.extend({
  // The console as global setup started it (confab serve, or the fallback proxy).
  baseURL: async ({}, use) => {
    await use(process.env.E2E_BASE_URL);
  },
  // Every page fails its test on an uncaught error or a Content-Security-Policy violation.
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    });
    await use(page);
    expect(problems).toEqual([]);
  },
});
export { expect };

/** A unique name per run. */
export const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

export async function signIn(page: Page, username = OPERATOR, password = operatorPassword()) {
  await page.goto('/console/login');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

/** A session token of the admin API, for checks behind the UI's back. */
export async function apiToken(request: APIRequestContext, username = OPERATOR, password = operatorPassword()) {
  const r = await request.post(`${apiUrl()}/admin/v1/sessions`, { data: { username, password } });
  expect(r.ok(), await r.text()).toBe(true);
  return ((await r.json()) as { token: string }).token;
}

export async function apiGet<T>(request: APIRequestContext, token: string, path: string): Promise<T> {
  const r = await request.get(`${apiUrl()}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(r.status(), await r.text()).toBe(200);
  return (await r.json()) as T;
}

export async function apiPost<T>(request: APIRequestContext, token: string, path: string, data: unknown): Promise<T> {
  const r = await request.post(`${apiUrl()}${path}`, { headers: { Authorization: `Bearer ${token}` }, data });
  expect(r.ok(), await r.text()).toBe(true);
  return (await r.json()) as T;
}

export async function apiPatch<T>(request: APIRequestContext, token: string, path: string, data: unknown): Promise<T> {
  const r = await request.patch(`${apiUrl()}${path}`, { headers: { Authorization: `Bearer ${token}` }, data });
  expect(r.ok(), await r.text()).toBe(true);
  return (await r.json()) as T;
}

/** No element makes the page scroll sideways. */
export async function expectNoHorizontalOverflow(page: Page) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  expect(scroll, 'page is wider than the viewport').toBeLessThanOrEqual(client);
  const wide = await page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    return [...document.querySelectorAll('body *')]
      .filter((e) => {
        const r = e.getBoundingClientRect();
        if (r.width === 0 || r.right <= w + 1) return false;
        // Inside a box that scrolls sideways on purpose (tables) is fine.
        for (let p = e.parentElement; p; p = p.parentElement) {
          const s = getComputedStyle(p);
          if ((s.overflowX === 'auto' || s.overflowX === 'scroll' || s.overflowX === 'hidden') && p.getBoundingClientRect().right <= w + 1)
            return false;
        }
        return getComputedStyle(e).visibility !== 'hidden';
      })
      .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`)
      .slice(0, 5);
  });
  expect(wide, 'elements sticking out to the right').toEqual([]);
}
