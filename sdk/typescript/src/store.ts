/**
 * The local store: where the SDK keeps what must outlive a connection — the
 * sync cursor (the last `inbox_seq` processed) and the conversation list.
 *
 * The default {@link MemoryStore} lasts as long as the page or process. Pass
 * your own implementation (IndexedDB, localStorage, SQLite, …) in
 * `ConfabClientOptions.store` to resume from the last cursor after a restart.
 * Every method may return a value or a promise. Data is kept per user, so one
 * store can serve several accounts.
 *
 * @module
 */

import type { StoredConversation } from './types.js';

/** A value or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** Pluggable persistence for cursors and conversations. */
export interface ConfabStore {
  /** The last `inbox_seq` processed for this user, or `undefined` if none. */
  getCursor(userId: string): Awaitable<number | undefined>;
  /** Saves the cursor. Called after each batch of messages is processed. */
  setCursor(userId: string, inboxSeq: number): Awaitable<void>;
  /** One conversation, or `undefined`. */
  getConversation(userId: string, convId: string): Awaitable<StoredConversation | undefined>;
  /** Inserts or replaces one conversation. */
  putConversation(userId: string, conversation: StoredConversation): Awaitable<void>;
  /** All stored conversations of this user, in any order. */
  listConversations(userId: string): Awaitable<StoredConversation[]>;
}

/** The default store: plain maps in memory. */
export class MemoryStore implements ConfabStore {
  private readonly cursors = new Map<string, number>();
  private readonly conversations = new Map<string, Map<string, StoredConversation>>();

  getCursor(userId: string): number | undefined {
    return this.cursors.get(userId);
  }

  setCursor(userId: string, inboxSeq: number): void {
    this.cursors.set(userId, inboxSeq);
  }

  getConversation(userId: string, convId: string): StoredConversation | undefined {
    const c = this.conversations.get(userId)?.get(convId);
    return c && structuredClone(c);
  }

  putConversation(userId: string, conversation: StoredConversation): void {
    let byId = this.conversations.get(userId);
    if (!byId) {
      byId = new Map();
      this.conversations.set(userId, byId);
    }
    byId.set(conversation.conv_id, structuredClone(conversation));
  }

  listConversations(userId: string): StoredConversation[] {
    return [...(this.conversations.get(userId)?.values() ?? [])].map((c) => structuredClone(c));
  }
}
