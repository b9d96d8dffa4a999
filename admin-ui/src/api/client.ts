// The typed client of the admin API (`/admin/v1`), from the generated schema.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type Account = Schemas['Account'];
export type Tenant = Schemas['Tenant'];
export type App = Schemas['App'];
export type Key = Schemas['Key'];
export type Quotas = Schemas['Quotas'];
export type Cell = Schemas['Cell'];
export type GrayRule = Schemas['GrayRule'];
export type GrayRuleInput = Schemas['GrayRuleInput'];
export type WordRule = Schemas['WordRule'];
export type WordAction = Schemas['WordAction'];
export type KickPolicy = Schemas['KickPolicy'];

/**
 * The console never holds its session token: the API puts it in an HttpOnly,
 * SameSite=Strict cookie that scripts cannot read (sign-in with
 * `cookie: true`). What the console holds, in memory only, is the session's
 * CSRF token, sent as `X-CSRF-Token` with every change; after a reload it
 * comes back from `GET /admin/v1/sessions/current`.
 */
let csrfToken: string | null = null;
export const session = {
  csrf: (): string | null => csrfToken,
  setCsrf: (token: string) => {
    csrfToken = token;
  },
  clear: () => {
    csrfToken = null;
  },
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** An error answer of the API: `{"error":{"code","message","request_id"}}`. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Called when the API says the session is gone (401 on anything but sign-in). */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(f: () => void) {
  onUnauthorized = f;
}

const auth: Middleware = {
  onRequest({ request }) {
    const csrf = session.csrf();
    if (csrf && !SAFE_METHODS.has(request.method.toUpperCase())) request.headers.set('X-CSRF-Token', csrf);
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && !request.url.endsWith('/admin/v1/sessions')) {
      session.clear();
      onUnauthorized();
    }
    return response;
  },
};

export const api = createClient<paths>({
  // Same origin as the console; the API lives at /admin/v1.
  baseUrl: globalThis.location?.origin ?? '',
  // Looked up per call (tests stub it).
  fetch: (request: Request) => globalThis.fetch(request),
  // The session cookie goes to the console's own origin only.
  credentials: 'same-origin',
});
api.use(auth);

/** Turns an error body (or anything else) into an `ApiError` with the API's message. */
export function toApiError(error: unknown, response: Response): ApiError {
  const detail = (error as { error?: { code?: string; message?: string; request_id?: string } } | undefined)
    ?.error;
  if (detail?.message) {
    return new ApiError(detail.message, response.status, detail.code ?? 'error', detail.request_id);
  }
  return new ApiError(`${response.status} ${response.statusText || 'request failed'}`, response.status, 'http');
}

/** Awaits an openapi-fetch call: the data, or throws `ApiError`. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result;
  try {
    result = await call;
  } catch (e) {
    throw new ApiError(`network error: ${e instanceof Error ? e.message : String(e)}`, 0, 'network');
  }
  const { data, error, response } = result;
  if (!response.ok || error !== undefined) throw toApiError(error, response);
  return data as T;
}

/** Every page of a cursor-paginated list. */
export async function allPages<T>(
  page: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor?: string | null }>,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const p = await page(cursor);
    items.push(...p.items);
    if (!p.next_cursor) break;
    cursor = p.next_cursor;
  }
  return items;
}

/** A random Idempotency-Key for a create (a retried click returns the first result). */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}
