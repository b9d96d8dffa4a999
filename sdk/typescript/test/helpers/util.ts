/** Small helpers shared by the tests: waiting, recording events, building clients. */

import { ConfabClient, type ConfabClientOptions, type ConnectionState, type Message } from '../../src/index.js';
import type { ConfabServer } from './server.js';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns something truthy; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(fn: () => T | undefined | null | false, what: string, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Everything a client emitted, in order. */
export interface Recording {
  messages: Message[];
  states: { state: ConnectionState; reason?: string; retryInMs?: number; errorCode?: string; at: number }[];
  goaway: { reason: string; retry_after_ms: number; at: number }[];
  kicked: string[];
  errors: Error[];
}

export function record(client: ConfabClient): Recording {
  const rec: Recording = { messages: [], states: [], goaway: [], kicked: [], errors: [] };
  client.on('message', (m) => rec.messages.push(m));
  client.on('state', (state, change) => {
    const entry: Recording['states'][number] = { state, at: Date.now() };
    if (change.reason !== undefined) entry.reason = change.reason;
    if (change.retryInMs !== undefined) entry.retryInMs = change.retryInMs;
    if (change.error !== undefined) entry.errorCode = change.error.code;
    rec.states.push(entry);
  });
  client.on('kicked', (k) => rec.kicked.push(k.reason));
  client.on('goaway', (g) => rec.goaway.push({ ...g, at: Date.now() }));
  client.on('error', (e) => rec.errors.push(e));
  return rec;
}

/** Fast timings so that reconnect tests stay short. */
export const FAST: Partial<ConfabClientOptions> = {
  reconnect: { initialDelayMs: 100, maxDelayMs: 800, factor: 2, jitter: 0.5 },
  requestTimeoutMs: 3_000,
  connectTimeoutMs: 3_000,
};

const clients: ConfabClient[] = [];

/** A client for `userId` on `server`, with a token source that mints a fresh token per login. */
export function client(
  server: ConfabServer,
  userId: string,
  opts: Partial<ConfabClientOptions> = {},
): ConfabClient {
  const c = new ConfabClient({
    url: server.url,
    token: () => server.token(userId),
    deviceId: `${userId}-dev`,
    platform: 'web',
    ...FAST,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** Closes every client made by `client()` (call in afterEach/afterAll). */
export function closeAll(): void {
  for (const c of clients.splice(0)) c.close();
}

/** `p2p:<a>:<b>` with the two ids in byte order. */
export function p2p(a: string, b: string): string {
  return a <= b ? `p2p:${a}:${b}` : `p2p:${b}:${a}`;
}
