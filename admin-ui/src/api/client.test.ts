import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, allPages, session, unwrap } from './client';
import { jsonResponse } from '../test/render';

afterEach(() => {
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

describe('the admin API client', () => {
  it('sends the session token as a bearer header, to /admin/v1 only', async () => {
    const fetch = vi.fn(async (_req: Request) =>
      jsonResponse(200, { account_id: 'a', username: 'admin', role: 'operator', created_at: 'x' }),
    );
    vi.stubGlobal('fetch', fetch);
    session.set('cs_abc');
    const me = await unwrap(api.GET('/admin/v1/me'));
    expect(me.username).toBe('admin');
    const req = fetch.mock.calls[0][0];
    expect(new URL(req.url).pathname).toBe('/admin/v1/me');
    expect(req.headers.get('Authorization')).toBe('Bearer cs_abc');
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
    session.set('cs_old');
    await expect(unwrap(api.GET('/admin/v1/me'))).rejects.toThrow('session expired');
    expect(session.get()).toBeNull();
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
