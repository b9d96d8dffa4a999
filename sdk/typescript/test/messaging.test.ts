/**
 * Messaging against one real `confab serve`: send/receive, offline then
 * sync, de-duplication, gap detection, reads, recalls, typing, history.
 * Every test uses fresh user ids, so they share the server safely.
 */

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ConfabClient, ConfabError, MemoryStore, type Frame, type Message } from '../src/index.js';
import { ConfabServer, uid } from './helpers/server.js';
import { client, closeAll, p2p, record, sleep, waitFor } from './helpers/util.js';

const server = new ConfabServer();
beforeAll(() => server.start());
afterEach(() => closeAll());
afterAll(() => server.dispose());

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

describe('send and receive', () => {
  test('send resolves with the durable reply and the peer gets the message once, in order', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    const bob = client(server, b);
    const ra = record(alice);
    const rb = record(bob);
    await alice.login();
    await bob.login();
    expect(alice.state).toBe('logged_in');
    expect(alice.userId).toBe(a);

    const first = await alice.send(b, 'hi bob');
    expect(first.msg_id).toMatch(ULID);
    expect(first.conv_id).toBe(p2p(a, b));
    expect(first.seq).toBe(1);
    expect(first.inbox_seq).toBe(1);
    expect(typeof first.ts).toBe('number');
    const second = await alice.send({ kind: 'user', id: b }, { type: 'custom', n: 2 });
    expect(second.seq).toBe(2);

    await waitFor(() => rb.messages.length >= 2, 'bob gets both messages');
    await sleep(100);
    expect(rb.messages.map((m) => m.msg_id)).toEqual([first.msg_id, second.msg_id]);
    expect(rb.messages[0]).toMatchObject({
      from: a,
      to: { kind: 'user', id: b },
      conv_id: p2p(a, b),
      seq: 1,
      inbox_seq: 1,
      body: { type: 'text', text: 'hi bob' },
    });
    expect(rb.messages[0]).not.toHaveProperty('op');
    expect(rb.messages[1]!.body).toEqual({ type: 'custom', n: 2 });
    expect(bob.lastInboxSeq).toBe(2);
    // The sender's own messages move its cursor but are not echoed as events.
    expect(alice.lastInboxSeq).toBe(2);
    expect(ra.messages).toEqual([]);

    const back = await bob.send(a, 'hi alice');
    await waitFor(() => ra.messages.length === 1, 'alice gets the answer');
    expect(ra.messages[0]!.msg_id).toBe(back.msg_id);
    expect(ra.messages[0]!.seq).toBe(3);
    expect(ra.messages[0]!.inbox_seq).toBe(3);
  });

  test("the sender's other devices get its messages as message events", async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const laptop = client(server, a, { deviceId: 'laptop', platform: 'desktop' });
    const phone = client(server, a, { deviceId: 'phone', platform: 'ios' });
    const rl = record(laptop);
    const rp = record(phone);
    await laptop.login();
    await phone.login();
    const sent = await laptop.send(b, 'from my laptop');
    await waitFor(() => rp.messages.length === 1, 'the phone gets the message');
    expect(rp.messages[0]).toMatchObject({ msg_id: sent.msg_id, from: a, inbox_seq: 1 });
    expect(phone.lastInboxSeq).toBe(1);
    expect(rl.messages).toEqual([]);
  });

  test('a repeated client_msg_id returns the same msg_id and seq and is delivered once', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    const bob = client(server, b);
    const rb = record(bob);
    await alice.login();
    await bob.login();
    const one = await alice.send(b, 'once', { clientMsgId: 'fixed-1' });
    const again = await alice.send(b, 'once', { clientMsgId: 'fixed-1' });
    expect(again.msg_id).toBe(one.msg_id);
    expect(again.seq).toBe(one.seq);
    expect(one.inbox_seq).toBe(1);
    expect(again.inbox_seq).toBeUndefined();
    await waitFor(() => rb.messages.length === 1, 'bob gets the message');
    await sleep(200);
    expect(rb.messages).toHaveLength(1);
    const page = await bob.history(p2p(a, b));
    expect(page.messages.map((m) => m.msg_id)).toEqual([one.msg_id]);
  });

  test('a send whose reply is lost is retried with the same client_msg_id and stored once', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    let lost: Frame | undefined;
    const alice = client(server, a, {
      requestTimeoutMs: 400,
      // Lose the first send reply, as if the connection had stalled.
      interceptInbound: (f: Frame) => {
        if (!lost && f.op === 'reply' && typeof f.msg_id === 'string') {
          lost = f;
          return null;
        }
        return f;
      },
    });
    const bob = client(server, b);
    const rb = record(bob);
    await alice.login();
    await bob.login();
    const sent = await alice.send(b, 'are you there?');
    expect(lost).toBeDefined();
    expect(sent.msg_id).toBe(lost!.msg_id);
    expect(sent.client_msg_id).toBe(lost!.client_msg_id);
    expect(sent.seq).toBe(1);
    expect(sent.inbox_seq).toBeUndefined(); // the server recognised the repeat
    await waitFor(() => rb.messages.length === 1, 'bob gets it');
    await sleep(200);
    expect(rb.messages).toHaveLength(1);
    expect((await bob.history(sent.conv_id)).messages).toHaveLength(1);
  });

  test('a send the server refuses for good rejects and leaves the queue', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    await alice.login();
    const err = await alice.send(b, { type: 'not-a-type' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfabError);
    expect((err as ConfabError).code).toBe('bad_request');
    const big = await alice.send(b, 'x'.repeat(13_000)).catch((e: unknown) => e);
    expect((big as ConfabError).code).toBe('quota_exceeded');
    expect(alice.pendingSends()).toEqual([]);
    // The connection is still usable.
    expect((await alice.send(b, 'fine')).seq).toBe(1);
  });

  test('sends made before login wait in the queue and go out after it', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    const p1 = alice.send(b, 'queued 1');
    const p2 = alice.send(b, 'queued 2');
    expect(alice.pendingSends().map((p) => p.body.text)).toEqual(['queued 1', 'queued 2']);
    await alice.login();
    const [r1, r2] = await Promise.all([p1, p2]);
    expect([r1.seq, r2.seq]).toEqual([1, 2]);
    expect(alice.pendingSends()).toEqual([]);
  });
});

describe('offline then sync', () => {
  test('messages sent while the user was offline arrive on login, paged until has_more is false', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    await alice.login();
    const sent: string[] = [];
    for (let i = 1; i <= 7; i++) sent.push((await alice.send(b, `offline ${i}`)).msg_id);

    const pages: { count: number; has_more: boolean }[] = [];
    const store = new MemoryStore();
    const bob = client(server, b, {
      store,
      syncPageSize: 3,
      interceptInbound: (f: Frame) => {
        if (f.op === 'reply' && Array.isArray(f.messages) && 'has_more' in f && !('conv_id' in f)) {
          pages.push({ count: f.messages.length, has_more: f.has_more === true });
        }
        return f;
      },
    });
    const rb = record(bob);
    const login = await bob.login();
    expect(login.inbox_seq).toBe(7);
    // login() resolves once the catch-up is done.
    expect(rb.messages.map((m) => m.msg_id)).toEqual(sent);
    expect(rb.messages.map((m) => m.inbox_seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(pages).toEqual([
      { count: 3, has_more: true },
      { count: 3, has_more: true },
      { count: 1, has_more: false },
    ]);
    expect(bob.lastInboxSeq).toBe(7);
    expect(await store.getCursor(b)).toBe(7);

    // Offline again: a new client on the same store resumes from the stored cursor.
    bob.close();
    const later = [(await alice.send(b, 'later 1')).msg_id, (await alice.send(b, 'later 2')).msg_id];
    const bobAgain = client(server, b, { store });
    const rb2 = record(bobAgain);
    await bobAgain.login();
    expect(rb2.messages.map((m) => m.msg_id)).toEqual(later);
    expect(bobAgain.lastInboxSeq).toBe(9);

    // Unread counts come with the conversation list.
    const list = await bobAgain.conversations();
    const conv = list.conversations.find((c) => c.conv_id === p2p(a, b));
    expect(conv).toMatchObject({ unread: 9, read_seq: 0, last_seq: 9, peer: { kind: 'user', id: a } });
    expect(conv!.last_message!.msg_id).toBe(later[1]);
    expect(list.total_unread).toBe(9);
  });
});

describe('de-duplication and gaps', () => {
  test('repeated pushes of the same message are shown once', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    let pushes = 0;
    const bob = client(server, b, {
      // Deliver every push three times, the way a flaky network or a
      // reconnect race might.
      interceptInbound: (f: Frame) => {
        if (f.op !== 'message') return f;
        pushes++;
        return [f, { ...f }, structuredClone(f)];
      },
    });
    const rb = record(bob);
    await alice.login();
    await bob.login();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await alice.send(b, `m${i}`)).msg_id);
    await waitFor(() => rb.messages.length >= 3, 'three messages');
    await sleep(200);
    expect(pushes).toBe(3);
    expect(rb.messages.map((m) => m.msg_id)).toEqual(ids);

    // Syncing again from the start finds nothing new.
    const again = await bob.sync({ since: 0 });
    expect(again).toEqual([]);
    expect(rb.messages).toHaveLength(3);
  });

  test('a push beyond a gap triggers sync, which fills the gap in order', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    let dropped: string | undefined;
    const synced: string[] = [];
    const bob = client(server, b, {
      interceptInbound: (f: Frame) => {
        // Lose the first push on the way.
        if (f.op === 'message' && dropped === undefined) {
          dropped = f.msg_id as string;
          return null;
        }
        if (f.op === 'reply' && Array.isArray(f.messages) && !('conv_id' in f)) {
          synced.push(...(f.messages as Message[]).map((m) => m.msg_id));
        }
        return f;
      },
    });
    const rb = record(bob);
    await alice.login();
    await bob.login();

    const m1 = await alice.send(b, 'one');
    await waitFor(() => dropped, 'the first push to be dropped');
    await sleep(150);
    expect(rb.messages).toEqual([]);
    expect(bob.lastInboxSeq).toBe(0);

    const m2 = await alice.send(b, 'two');
    await waitFor(() => rb.messages.length === 2, 'the gap to be filled');
    expect(dropped).toBe(m1.msg_id);
    expect(synced).toContain(m1.msg_id);
    expect(rb.messages.map((m) => m.msg_id)).toEqual([m1.msg_id, m2.msg_id]);
    expect(rb.messages.map((m) => m.inbox_seq)).toEqual([1, 2]);
    expect(bob.lastInboxSeq).toBe(2);

    const m3 = await alice.send(b, 'three');
    await waitFor(() => rb.messages.length === 3, 'the next push');
    await sleep(100);
    expect(rb.messages.map((m) => m.msg_id)).toEqual([m1.msg_id, m2.msg_id, m3.msg_id]);
  });
});

describe('read state, recall, typing, history', () => {
  test('read moves the cursor, the peer gets a receipt, other devices get read', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    const bob = client(server, b, { deviceId: 'bob-web', platform: 'web' });
    const bobPhone = client(server, b, { deviceId: 'bob-phone', platform: 'android' });
    await alice.login();
    await bob.login();
    await bobPhone.login();
    const receipts: unknown[] = [];
    const reads: unknown[] = [];
    alice.on('receipt', (r) => receipts.push(r));
    bobPhone.on('read', (r) => reads.push(r));
    for (let i = 0; i < 3; i++) await alice.send(b, `n${i}`);
    const conv = p2p(a, b);
    await waitFor(() => bob.lastInboxSeq === 3, 'bob has all three');

    const before = await bob.conversations();
    expect(before.conversations.find((c) => c.conv_id === conv)?.unread).toBe(3);
    expect(before.total_unread).toBe(3);

    expect(await bob.read(conv, 2)).toEqual({ conv_id: conv, seq: 2 });
    await waitFor(() => receipts.length === 1 && reads.length === 1, 'receipt and read pushes');
    expect(receipts[0]).toEqual({ conv_id: conv, seq: 2, user_id: b });
    expect(reads[0]).toEqual({ conv_id: conv, seq: 2 });

    const after = await bob.conversations();
    expect(after.conversations.find((c) => c.conv_id === conv)).toMatchObject({ unread: 1, read_seq: 2 });
    expect(after.total_unread).toBe(1);
    const local = await bob.localConversations();
    expect(local.find((c) => c.conv_id === conv)).toMatchObject({ unread: 1, read_seq: 2, last_seq: 3 });
    const aliceLocal = await alice.localConversations();
    expect(aliceLocal.find((c) => c.conv_id === conv)).toMatchObject({ peer_read_seq: 2, unread: 0 });
  });

  test('recall replaces the body everywhere and notifies the peer', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    const bob = client(server, b);
    const recalled: unknown[] = [];
    bob.on('recalled', (r) => recalled.push(r));
    await alice.login();
    await bob.login();
    const sent = await alice.send(b, 'oops');
    await waitFor(() => bob.lastInboxSeq === 1, 'bob has it');
    expect(await alice.recall(sent.conv_id, sent.msg_id)).toEqual({
      conv_id: sent.conv_id,
      msg_id: sent.msg_id,
      recalled: true,
    });
    await waitFor(() => recalled.length === 1, 'the recalled push');
    expect(recalled[0]).toEqual({ conv_id: sent.conv_id, seq: sent.seq, msg_id: sent.msg_id });
    const page = await bob.history(sent.conv_id);
    expect(page.messages[0]).toMatchObject({ msg_id: sent.msg_id, recalled: true, body: { type: 'recalled' } });
    const local = await bob.localConversations();
    expect(local[0]!.last_message).toMatchObject({ recalled: true, body: { type: 'recalled' } });

    const notMine = await bob.recall(sent.conv_id, sent.msg_id).catch((e: ConfabError) => e.code);
    expect(notMine).toBe('forbidden');
  });

  test('typing reaches the online peer', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    const bob = client(server, b);
    const typing: unknown[] = [];
    bob.on('typing', (t) => typing.push(t));
    await alice.login();
    await bob.login();
    await alice.typing(b);
    await waitFor(() => typing.length === 1, 'the typing push');
    expect(typing[0]).toEqual({ conv_id: p2p(a, b), from: a, to: { kind: 'user', id: b } });
  });

  test('history pages backwards, newest first', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = client(server, a);
    await alice.login();
    for (let i = 1; i <= 5; i++) await alice.send(b, `h${i}`);
    const conv = p2p(a, b);
    const p1 = await alice.history(conv, { limit: 2 });
    expect(p1.messages.map((m) => m.seq)).toEqual([5, 4]);
    expect(p1.has_more).toBe(true);
    const p2 = await alice.history(conv, { beforeSeq: 4, limit: 10 });
    expect(p2.messages.map((m) => m.seq)).toEqual([3, 2, 1]);
    expect(p2.has_more).toBe(false);
    const missing = await alice.history(p2p(a, uid('nobody'))).then(
      (r) => r.messages.length,
      (e: ConfabError) => e.code,
    );
    expect(missing).toBe(0);
    const notMine = await alice.history(p2p(uid('x'), uid('y'))).catch((e: ConfabError) => e.code);
    expect(notMine).toBe('not_found');
  });

  test('requests that need a session fail fast when there is none', async () => {
    const c = new ConfabClient({ url: server.url });
    await expect(c.history('p2p:a:b')).rejects.toMatchObject({ code: 'not_connected' });
    await expect(c.sync()).rejects.toMatchObject({ code: 'not_connected' });
    c.close();
  });
});

describe('login refused', () => {
  test('a token the server refuses rejects login with unauthorized and the client stays closed', async () => {
    const b = uid('bob');
    const c = new ConfabClient({
      url: server.url,
      token: server.token(b, { secret: 'sk_not_the_right_secret' }),
      reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
    });
    const rec = record(c);
    const err = await c.login().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfabError);
    expect((err as ConfabError).code).toBe('unauthorized');
    expect(c.state).toBe('closed');
    await sleep(500);
    expect(rec.states.map((s) => s.state)).toEqual(['connecting', 'open', 'closed']);
    expect(rec.states.at(-1)!.reason).toBe('login refused');
  });
});
