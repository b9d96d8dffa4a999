/** Which WebSocket implementation the SDK picks, and that an explicit one is used as given. */

import { afterAll, beforeAll, expect, test } from 'vitest';
import { WebSocket as WsWebSocket } from 'ws';
import { ConfabClient, type WebSocketConstructor } from '../src/index.js';
import { resolveWebSocket } from '../src/transport.js';
import { ConfabServer, uid } from './helpers/server.js';

const server = new ConfabServer();
beforeAll(() => server.start());
afterAll(() => server.dispose());

test('the global WebSocket when the runtime has one (browsers, Node ≥ 22), else the ws package', async () => {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  // The `global-websocket` project (vitest.config.ts) must really have one.
  if (process.env.CONFAB_TEST_GLOBAL_WEBSOCKET === '1') expect(typeof global).toBe('function');
  const chosen = await resolveWebSocket();
  expect(chosen).toBe(global ?? WsWebSocket);
});

test('an explicit WebSocket constructor is used as given, with the confab.v1.json subprotocol', async () => {
  const made: { url: string; protocols: unknown }[] = [];
  class Recording extends WsWebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      made.push({ url, protocols });
    }
  }
  const a = uid('alice');
  const c = new ConfabClient({
    url: server.url,
    token: server.token(a),
    WebSocket: Recording as unknown as WebSocketConstructor,
  });
  try {
    const login = await c.login();
    expect(login.user_id).toBe(a);
    expect(made).toEqual([{ url: server.url, protocols: ['confab.v1.json'] }]);
    expect(typeof (await c.ping())).toBe('number');
  } finally {
    c.close();
  }
});
