import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, allPages, session, unwrap } from './client';
import { jsonResponse } from '../test/render';

afterEach(() => {
  vi.unstubAllGlobals();
  session.clear();
});

describe('the admin API client', () => {
  it('holds no session token: the cookie goes same-origin, the CSRF token only with changes', async () => {
    const fetch = vi.fn(async (_req: Request) =>
      jsonResponse(200, { account_id: 'a', username: 'admin', role: 'operator', created_at: 'x' }),
    );
    vi.stubGlobal('fetch', fetch);
    session.setCsrf('csrf-1');
    const me = await unwrap(api.GET('/admin/v1/me'));
    expect(me.username).toBe('admin');
    const get = fetch.mock.calls[0][0];
    expect(new URL(get.url).pathname).toBe('/admin/v1/me');
    expect(get.credentials).toBe('same-origin');
    expect(get.headers.get('Authorization')).toBeNull();
    expect(get.headers.get('X-CSRF-Token')).toBeNull();
    await unwrap(api.POST('/admin/v1/tenants', { body: { name: 'acme' } })).catch(() => undefined);
    expect(fetch.mock.calls[1][0].headers.get('X-CSRF-Token')).toBe('csrf-1');
    // Nothing of the session in web storage.
    expect(localStorage.length + sessionStorage.length).toBeLessThanOrEqual(1);
    expect(JSON.stringify({ ...localStorage, ...sessionStorage })).not.toContain('csrf-1');
  });

  it("throws the API's error message", async () => {
    vi.stubGlobal('fetch', async () =>
      jsonResponse(409, { error: { code: 'conflict', message: 'tenant "acme" exists', request_id: 'r1' } }),
    );
    const err = await unwrap(api.POST('/admin/v1/tenants', { body: { name: 'acme' } })).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toBe('tenant "acme" exists');
    expect(err.code).toBe('conflict');
    expect(err.status).toBe(409);
    expect(err.requestId).toBe('r1');
  });

  it('clears the session when the API answers 401', async () => {
    vi.stubGlobal('fetch', async () =>
      jsonResponse(401, { error: { code: 'unauthorized', message: 'session expired', request_id: 'r' } }),
    );
    session.setCsrf('csrf-old');
    await expect(unwrap(api.GET('/admin/v1/me'))).rejects.toThrow('session expired');
    expect(session.csrf()).toBeNull();
  });

  it('reads every page of a list', async () => {
    const pages: Record<string, { items: number[]; next_cursor: string | null }> = {
      '': { items: [1, 2], next_cursor: 'c2' },
      c2: { items: [3], next_cursor: null },
    };
    const seen: (string | undefined)[] = [];
    const all = await allPages(async (cursor) => {
      seen.push(cursor);
      return pages[cursor ?? ''];
    });
    expect(all).toEqual([1, 2, 3]);
    expect(seen).toEqual([undefined, 'c2']);
  });
});
