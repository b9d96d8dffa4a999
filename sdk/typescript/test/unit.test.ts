/** Pieces that need no server: backoff, the memory store, the emitter, options. */

import { describe, expect, test } from 'vitest';
import { ConfabClient, ConfabError, DEFAULT_BACKOFF, Emitter, MemoryStore, backoffDelay, isRetryable } from '../src/index.js';

describe('backoffDelay', () => {
  const opts = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };

  test('grows exponentially up to the cap', () => {
    const noJitter = () => 0;
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, opts, noJitter))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  test('jitter takes up to the given fraction off', () => {
    expect(backoffDelay(2, opts, () => 1)).toBe(200);
    expect(backoffDelay(2, opts, () => 0.5)).toBe(300);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, opts);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
  });

  test('defaults start at 500 ms and stop at 30 s', () => {
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(500);
    expect(backoffDelay(50, DEFAULT_BACKOFF, () => 0)).toBe(30_000);
  });
});

describe('MemoryStore', () => {
  test('keeps cursors and conversations per user, as copies', () => {
    const s = new MemoryStore();
    expect(s.getCursor('alice')).toBeUndefined();
    s.setCursor('alice', 7);
    expect(s.getCursor('alice')).toBe(7);
    expect(s.getCursor('bob')).toBeUndefined();
    const conv = { conv_id: 'p2p:alice:bob', unread: 1, read_seq: 0, last_seq: 1 };
    s.putConversation('alice', conv);
    conv.unread = 99;
    expect(s.getConversation('alice', 'p2p:alice:bob')!.unread).toBe(1);
    expect(s.listConversations('bob')).toEqual([]);
    expect(s.listConversations('alice')).toHaveLength(1);
  });
});

describe('Emitter', () => {
  class E extends Emitter<{ x: (n: number) => void }> {
    fire(n: number) {
      this.emit('x', n);
    }
  }

  test('on, once, off, and a throwing listener does not stop the others', () => {
    const e = new E();
    const got: string[] = [];
    const off = e.on('x', (n) => got.push(`on${n}`));
    e.once('x', (n) => got.push(`once${n}`));
    const original = console.error;
    console.error = () => {};
    try {
      e.on('x', () => {
        throw new Error('boom');
      });
      e.on('x', (n) => got.push(`after${n}`));
      e.fire(1);
      off();
      e.fire(2);
    } finally {
      console.error = original;
    }
    expect(got).toEqual(['on1', 'once1', 'after1', 'after2']);
  });
});

describe('ConfabClient without a server', () => {
  test('needs a url', () => {
    expect(() => new ConfabClient({ url: '' })).toThrow(ConfabError);
  });

  test('starts closed and fails fast when the server cannot be reached', async () => {
    const c = new ConfabClient({ url: 'ws://127.0.0.1:9/v1/connect', token: 't' });
    expect(c.state).toBe('closed');
    const err = await c.login().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfabError);
    expect((err as ConfabError).code).toBe('transport');
    expect(c.state).toBe('closed');
  });

  test('close() rejects queued sends', async () => {
    const c = new ConfabClient({ url: 'ws://127.0.0.1:9/v1/connect' });
    const p = c.send('bob', 'never sent');
    expect(c.pendingSends()).toHaveLength(1);
    c.close();
    await expect(p).rejects.toMatchObject({ code: 'closed' });
  });

  test('isRetryable separates transient failures from final ones', () => {
    expect(isRetryable(new ConfabError('unavailable', ''))).toBe(true);
    expect(isRetryable(new ConfabError('timeout', ''))).toBe(true);
    expect(isRetryable(new ConfabError('bad_request', ''))).toBe(false);
    expect(isRetryable(new Error('x'))).toBe(false);
  });
});
