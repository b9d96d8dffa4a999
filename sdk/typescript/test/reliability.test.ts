/**
 * Connection reliability against a real `confab serve` that the tests kill
 * (SIGKILL), stop (SIGTERM, goaway) and restart on the same data directory
 * and ports. The server runs with short idle and login timeouts so that
 * heartbeats and timeouts can be observed in seconds.
 *
 * The tests in this file run one after another (they share the server and
 * some of them kill it).
 */

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ConfabClient, type ConfabClientOptions, type Frame, type SendResult } from '../src/index.js';
import { ConfabServer, mintToken, uid } from './helpers/server.js';
import { FAST, client as baseClient, closeAll, p2p, record, sleep, waitFor } from './helpers/util.js';

const server = new ConfabServer({
  env: { CONFAB_IDLE_TIMEOUT_SECS: '2', CONFAB_LOGIN_TIMEOUT_SECS: '1', CONFAB_DRAIN_SECS: '1' },
});
beforeAll(() => server.start());
afterEach(async () => {
  closeAll();
  if (!server.running) await server.start();
});
afterAll(() => server.dispose());

/** Clients in this file ping well within the server's 2 s idle timeout. */
function client(userId: string, opts: Partial<ConfabClientOptions> = {}): ConfabClient {
  return baseClient(server, userId, { heartbeatIntervalMs: 500, ...opts });
}

describe('server crash', () => {
  test('SIGKILL and restart mid-conversation: the SDK reconnects, resends unacknowledged messages, nothing is lost or shown twice', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    // While `cut` is set, nothing reaches alice: the replies the server sends
    // just before it dies are lost, as they would be if the crash came a
    // moment earlier. (Events of a closed socket are ignored anyway.)
    let cut = false;
    const alice = client(a, { interceptInbound: (f: Frame) => (cut ? null : f) });
    const bob = client(b);
    const ra = record(alice);
    const rb = record(bob);
    await alice.login();
    await bob.login();

    // 1–5: acknowledged before the crash.
    const results: SendResult[] = [];
    for (let i = 1; i <= 5; i++) results.push(await alice.send(b, `before ${i}`));
    await waitFor(() => rb.messages.length === 5, 'bob has the first five');

    // 6–10: stored by the server (bob got them) but never acknowledged to alice.
    cut = true;
    const stored = [6, 7, 8, 9, 10].map((i) => alice.send(b, `stored ${i}`));
    await waitFor(() => rb.messages.length === 10, 'the server to store 6–10');
    // 11–12: written to the connection as the server dies; stored or not.
    const racing = [11, 12].map((i) => alice.send(b, `racing ${i}`));
    await server.kill();
    await waitFor(() => alice.state === 'reconnecting' && bob.state === 'reconnecting', 'both clients to notice');
    cut = false;

    // 13–15: sent while the server is down; they wait in the queue.
    const queued = [13, 14, 15].map((i) => alice.send(b, `queued ${i}`));
    const pendingBeforeRestart = alice.pendingSends();
    expect(pendingBeforeRestart.map((p) => p.body.text)).toEqual([
      ...[6, 7, 8, 9, 10].map((i) => `stored ${i}`),
      'racing 11',
      'racing 12',
      ...[13, 14, 15].map((i) => `queued ${i}`),
    ]);
    expect(pendingBeforeRestart.map((p) => p.attempts)).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    await sleep(400); // a few reconnect attempts fail meanwhile

    await server.start();
    results.push(...(await Promise.all([...stored, ...racing, ...queued])));

    // Every send resolved once, with the seq the server gave it, in order.
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.msg_id)).size).toBe(15);
    // The retries used the client_msg_id of the first attempt, and for 6–10
    // the server recognised the repeat (a repeat's reply has no inbox_seq)
    // and answered with what bob had already received.
    expect(results.slice(5).map((r) => r.client_msg_id)).toEqual(pendingBeforeRestart.map((p) => p.client_msg_id));
    expect(results.slice(5, 10).map((r) => r.inbox_seq)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(results.slice(5, 10).map((r) => r.msg_id)).toEqual(rb.messages.slice(5, 10).map((m) => m.msg_id));
    expect(alice.pendingSends()).toEqual([]);

    // Bob sees each message exactly once, in order: no loss, no double.
    await waitFor(() => rb.messages.length >= 15, 'bob has all fifteen');
    await waitFor(() => alice.lastInboxSeq === 15, "alice's cursor to catch up");
    await sleep(300);
    expect(rb.messages.map((m) => m.msg_id)).toEqual(results.map((r) => r.msg_id));
    expect(rb.messages.map((m) => m.inbox_seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(bob.lastInboxSeq).toBe(15);

    // The server stored each message once.
    const history = await bob.history(p2p(a, b), { limit: 100 });
    expect(history.messages.map((m) => m.msg_id).reverse()).toEqual(results.map((r) => r.msg_id));
    expect(history.messages.map((m) => m.body.text).reverse()).toEqual([
      ...[1, 2, 3, 4, 5].map((i) => `before ${i}`),
      ...[6, 7, 8, 9, 10].map((i) => `stored ${i}`),
      'racing 11',
      'racing 12',
      ...[13, 14, 15].map((i) => `queued ${i}`),
    ]);

    // Both went through reconnecting with backoff delays within the configured bounds.
    for (const rec of [ra, rb]) {
      const waits = rec.states.filter((s) => s.state === 'reconnecting');
      expect(waits.length).toBeGreaterThanOrEqual(2);
      for (const w of waits) {
        expect(w.retryInMs).toBeGreaterThanOrEqual(50);
        expect(w.retryInMs).toBeLessThanOrEqual(800);
      }
      expect(rec.states.at(-1)!.state).toBe('logged_in');
    }
    expect(ra.errors).toEqual([]);
    expect(rb.errors).toEqual([]);
  });

  test('messages sent while the recipient was cut off by the crash arrive after its reconnect', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = client(b);
    const rb = record(bob);
    await bob.login();
    await server.kill();
    await waitFor(() => bob.state === 'reconnecting', 'bob notices');
    // Bob keeps retrying while the server is down; whichever comes first after
    // the restart, alice's pushes or bob's reconnect, he must end up with both.
    await server.start();
    const alice = client(a);
    await alice.login();
    const sent = [(await alice.send(b, 'while you were away 1')).msg_id, (await alice.send(b, 'while you were away 2')).msg_id];
    await waitFor(() => rb.messages.length === 2, 'bob catches up');
    await sleep(200);
    expect(rb.messages.map((m) => m.msg_id)).toEqual(sent);
  });
});

describe('goaway', () => {
  test('on SIGTERM the server sends goaway; the SDK waits retry_after_ms, then reconnects', async () => {
    const a = uid('alice');
    const alice = client(a);
    const ra = record(alice);
    await alice.login();
    await server.terminate();
    expect(ra.goaway).toHaveLength(1);
    expect(ra.goaway[0]).toMatchObject({ reason: 'server_shutdown', retry_after_ms: 1000 });
    const wait = ra.states.find((s) => s.state === 'reconnecting');
    expect(wait?.reason).toBe('server shutting down');
    expect(wait!.retryInMs).toBeGreaterThanOrEqual(1000);

    await server.start();
    await waitFor(() => alice.state === 'logged_in', 'alice is back', 10_000);
    const firstAttempt = ra.states.find((s) => s.state === 'connecting' && s.at > wait!.at);
    expect(firstAttempt!.at - ra.goaway[0]!.at).toBeGreaterThanOrEqual(950);
    expect((await alice.send(uid('bob'), 'after the restart')).seq).toBe(1);
  });
});

describe('kick', () => {
  test('a session kicked by a login on another device of the same platform stops reconnecting', async () => {
    const a = uid('alice');
    const first = client(a, { deviceId: 'laptop-1', platform: 'web' });
    const second = client(a, { deviceId: 'laptop-2', platform: 'web' });
    const rf = record(first);
    const rs = record(second);
    await first.login();
    await second.login();
    await waitFor(() => first.state === 'closed', 'the first session to close');
    expect(rf.kicked).toEqual(['logged in on another device of the same platform']);
    expect(rf.states.at(-1)).toMatchObject({ state: 'closed', reason: 'kicked' });

    // Several backoff periods later it has still not tried again.
    const statesAfterKick = rf.states.length;
    await sleep(1200);
    expect(rf.states.length).toBe(statesAfterKick);
    expect(second.state).toBe('logged_in');

    // Queued sends wait; an explicit login takes over again (and kicks the other).
    const queued = first.send(uid('bob'), 'after the kick');
    await first.login();
    expect((await queued).seq).toBe(1);
    await waitFor(() => second.state === 'closed', 'the second session to be kicked in turn');
    expect(rs.kicked).toHaveLength(1);
  });
});

describe('refused login during a reconnect', () => {
  test('a token whose key was revoked is refused after a restart, and the client stops', async () => {
    const creds = server.credentials!;
    const key = JSON.parse(server.cli(['admin', 'key', 'create', '--app', creds.appId, '--json'])) as {
      key_id: string;
      secret: string;
    };
    const a = uid('alice');
    const token = mintToken({ appId: creds.appId, keyId: key.key_id, secret: key.secret, userId: a, ttlSecs: 600 });
    // The running server picks up the CLI's new key within a second.
    await sleep(1500);
    const alice = new ConfabClient({ url: server.url, token, heartbeatIntervalMs: 500, ...FAST });
    const ra = record(alice);
    try {
      await alice.login();
      server.cli(['admin', 'key', 'revoke', '--key', key.key_id]);
      await server.kill();
      await server.start();
      await waitFor(() => alice.state === 'closed', 'the refused login to stop the client', 10_000);
      expect(ra.states.at(-1)).toMatchObject({ state: 'closed', reason: 'login refused', errorCode: 'unauthorized' });
      const n = ra.states.length;
      await sleep(1000);
      expect(ra.states.length).toBe(n);
    } finally {
      alice.close();
    }
  });
});

describe('suspension', () => {
  test('a suspended app: the live session is kicked, a new login is refused as suspended and the client stops', async () => {
    const a = uid('alice');
    const alice = client(a);
    const ra = record(alice);
    await alice.login();
    server.cli(['admin', 'tenant', 'suspend', '--tenant', 'default']);
    try {
      await waitFor(() => alice.state === 'closed', 'the live session to be kicked', 10_000);
      expect(ra.kicked).toHaveLength(1);
      const again = client(a);
      const rg = record(again);
      await expect(again.login()).rejects.toMatchObject({ code: 'suspended' });
      await waitFor(() => again.state === 'closed', 'the refused client to stop');
      expect(rg.states.at(-1)).toMatchObject({ state: 'closed', reason: 'login refused', errorCode: 'suspended' });
    } finally {
      server.cli(['admin', 'tenant', 'resume', '--tenant', 'default']);
      // The running server applies the CLI's change within a second.
      await sleep(1500);
    }
    const back = client(a);
    await back.login();
  });
});

describe('heartbeats and timeouts', () => {
  test('pings keep an idle connection open; without them the server closes it and the SDK reconnects', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const pinging = client(a, { heartbeatIntervalMs: 400 });
    const silent = client(b, { heartbeatIntervalMs: 0 });
    const rp = record(pinging);
    const rs = record(silent);
    await pinging.login();
    await silent.login();
    const since = Date.now();
    // The server's idle timeout is 2 s.
    const dropped = await waitFor(() => rs.states.find((s) => s.state === 'reconnecting'), 'the idle close', 6_000);
    expect(dropped.reason).toBe('idle timeout');
    expect(dropped.at - since).toBeGreaterThanOrEqual(1_900);
    await sleep(500);
    expect(rp.states.map((s) => s.state)).toEqual(['connecting', 'open', 'logged_in']);
    await waitFor(() => silent.state === 'logged_in', 'the silent client to come back');
  });

  test('a ping without a reply drops the connection and the SDK reconnects', async () => {
    const a = uid('alice');
    let swallow = true;
    const c = client(a, {
      heartbeatIntervalMs: 200,
      requestTimeoutMs: 400,
      // Lose ping replies (a reply with server_time and nothing else) until the drop.
      interceptInbound: (f: Frame) =>
        swallow && f.op === 'reply' && 'server_time' in f && !('user_id' in f) ? null : f,
    });
    const rec = record(c);
    await c.login();
    await waitFor(() => rec.states.some((s) => s.state === 'reconnecting'), 'the heartbeat to give up');
    swallow = false;
    expect(rec.states.find((s) => s.state === 'reconnecting')!.reason).toBe('heartbeat timeout');
    await waitFor(() => c.state === 'logged_in', 'the reconnect');
  });

  test('a connection that does not log in is closed by the server and not retried', async () => {
    const c = new ConfabClient({ url: server.url, ...FAST });
    const rec = record(c);
    await c.connect();
    expect(c.state).toBe('open');
    await waitFor(() => c.state === 'closed', 'the login timeout', 5_000);
    expect(rec.states.at(-1)!.reason).toBe('login timeout');
    await sleep(500);
    expect(rec.states.map((s) => s.state)).toEqual(['connecting', 'open', 'closed']);
  });
});
