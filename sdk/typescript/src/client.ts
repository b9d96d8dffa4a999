/**
 * `ConfabClient`: one user's long connection to Confab, with the hard parts
 * handled inside — heartbeats, reconnects with backoff, a send queue that
 * retries with the same `client_msg_id`, de-duplication, gap detection and
 * resume by `sync`.
 *
 * How the pieces fit:
 * - Replies are matched to requests by `rid` as soon as they arrive.
 * - Pushes, own-send acknowledgements and syncs run one at a time through a
 *   serial queue, in arrival order, so the inbox cursor and the store are only
 *   ever touched by one task. A push that reveals a gap runs `sync` inside that
 *   queue, so later pushes wait until the gap is filled and come out in order.
 * - The cursor (`lastInboxSeq`) is the highest *contiguous* `inbox_seq`
 *   processed; messages beyond a gap are held until the gap is filled.
 *
 * @module
 */

import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ConfabError, RETRYABLE_CODES } from './errors.js';
import { randomId } from './ids.js';
import { MemoryStore, type ConfabStore } from './store.js';
import {
  OPEN,
  SUBPROTOCOL,
  messageText,
  resolveWebSocket,
  type WebSocketConstructor,
  type WebSocketLike,
} from './transport.js';
import type {
  ConversationsResult,
  Frame,
  GoawayEvent,
  HistoryResult,
  KickedEvent,
  LoginResult,
  Message,
  MessageBody,
  Peer,
  Platform,
  ReadEvent,
  ReadResult,
  RecallResult,
  RecalledEvent,
  ReceiptEvent,
  SendResult,
  StoredConversation,
  TypingEvent,
} from './types.js';

/**
 * Connection states, in the order a healthy client goes through them:
 * `connecting` → `open` (socket up, not logged in) → `logged_in`. After a drop
 * the client goes to `reconnecting` (waiting for the next attempt) and then
 * `connecting` again. `closed` is the resting state: before the first
 * connect, after `close()`/`logout()`, after a kick, after a refused login.
 */
export type ConnectionState = 'connecting' | 'open' | 'logged_in' | 'reconnecting' | 'closed';

/** Details passed with each `state` event. */
export interface StateChange {
  /** The state before this change. */
  previous: ConnectionState;
  /** Why the connection closed (`kicked`, `login refused`, `idle timeout`, …), when it did. */
  reason?: string;
  /** The error that stopped the client, for `closed` after a refused login. */
  error?: ConfabError;
  /** For `reconnecting`: milliseconds until the next attempt. */
  retryInMs?: number;
}

/** Events emitted by {@link ConfabClient}. */
export interface ConfabEvents {
  /**
   * A message for this user, from a push or from `sync`, exactly once per
   * `msg_id` and in `inbox_seq` order. Messages sent by this client instance
   * are not emitted: their `send()` promise reports them.
   */
  message: (message: Message) => void;
  /** This user read a conversation on another device. */
  read: (event: ReadEvent) => void;
  /** The peer read a conversation up to `seq`. */
  receipt: (event: ReceiptEvent) => void;
  /** A message was recalled by its sender. */
  recalled: (event: RecalledEvent) => void;
  /** Someone is typing to this user (transient). */
  typing: (event: TypingEvent) => void;
  /** Another login replaced this session. The client will not reconnect until `login()` is called again. */
  kicked: (event: KickedEvent) => void;
  /** The server is shutting down; the client reconnects after `retry_after_ms`. */
  goaway: (event: GoawayEvent) => void;
  /** The connection state changed. */
  state: (state: ConnectionState, change: StateChange) => void;
  /** A background failure (for example a `sync` that failed for a reason other than a disconnect). */
  error: (error: ConfabError) => void;
}

/** A token, or a function that returns a fresh one (called on every login, including reconnects). */
export type TokenSource = string | (() => string | Promise<string>);

/** What `login` needs. */
export interface LoginCredentials {
  /** A user token: an HS256 JWT minted by the tenant's backend (or `confab token mint`). */
  token: TokenSource;
  /** A stable id for this app install (1–128 bytes). Default: a random id per client instance. */
  deviceId?: string;
  /** Default `web`. */
  platform?: Platform;
}

/** Options of {@link ConfabClient}. Only `url` is required. */
export interface ConfabClientOptions {
  /** WebSocket endpoint, e.g. `ws://127.0.0.1:8080/v1/connect`. */
  url: string;
  /** Default token for `login()` when called without credentials. */
  token?: TokenSource;
  /** Default device id for `login()`. */
  deviceId?: string;
  /** Default platform for `login()`. */
  platform?: Platform;
  /**
   * WebSocket implementation. Default: the global `WebSocket` (browsers,
   * Node ≥ 22), else the `ws` package (Node 20).
   */
  WebSocket?: WebSocketConstructor;
  /** Where cursors and conversations are kept. Default: a new {@link MemoryStore}. */
  store?: ConfabStore;
  /** Interval between `ping`s while logged in. Default 30 000 ms; 0 disables heartbeats. */
  heartbeatIntervalMs?: number;
  /**
   * Time to wait for a reply. Default 10 000 ms. A `ping` without a reply in
   * this time drops the connection (it is then re-established); a `send`
   * without a reply is sent again with the same `client_msg_id`.
   */
  requestTimeoutMs?: number;
  /** Time allowed for the WebSocket handshake. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Reconnect timing, or `false` to never reconnect automatically. */
  reconnect?: Partial<BackoffOptions> | false;
  /** `limit` of each `sync` page (1–500). Default 100. */
  syncPageSize?: number;
  /** Sends awaiting a reply at one time. Default 64. */
  maxInFlightSends?: number;
  /** How many recent `msg_id`s are remembered for de-duplication. Default 10 000. */
  dedupeWindow?: number;
  /**
   * Testing hook: sees every frame from the server before the SDK does and
   * returns the frames to process instead — `null` or `[]` drops it, an array
   * with copies duplicates it. Not for production use.
   */
  interceptInbound?: (frame: Frame) => Frame | Frame[] | null | undefined;
}

/** A message waiting in the send queue, as reported by {@link ConfabClient.pendingSends}. */
export interface PendingSend {
  client_msg_id: string;
  to: Peer;
  body: MessageBody;
  /** Times it was written to a connection so far. */
  attempts: number;
}

/** Options of `send`. */
export interface SendOptions {
  /**
   * The de-duplication key (≤ 128 bytes, unique per sender). Default: a new
   * random id. Every retry of this send uses the same value, so the server
   * stores the message once.
   */
  clientMsgId?: string;
}

interface PendingRequest {
  op: string;
  resolve: (frame: Frame) => void;
  reject: (err: ConfabError) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface OutboxItem {
  clientMsgId: string;
  to: Peer;
  body: MessageBody;
  resolve: (r: SendResult) => void;
  reject: (e: ConfabError) => void;
  inFlight: boolean;
  attempts: number;
  notBefore: number;
}

interface Resolved {
  heartbeatIntervalMs: number;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  reconnect: BackoffOptions | false;
  syncPageSize: number;
  maxInFlightSends: number;
  dedupeWindow: number;
}

type Source = 'push' | 'sync' | 'own';

/** Login errors after which retrying with the same credentials cannot help. */
// `suspended`: the operator suspended the app; reconnecting cannot help until
// they lift it, so the client stops instead of hammering the server.
const FATAL_LOGIN_CODES = new Set(['unauthorized', 'suspended', 'bad_request', 'not_logged_in', 'bad_frame']);

/** Errors that only mean "the connection went away"; the reconnect logic deals with them. */
const CONNECTION_CODES = new Set(['disconnected', 'not_connected', 'closed', 'transport']);

/** A set that forgets its oldest entries beyond `max`. */
class BoundedSet {
  private readonly items = new Set<string>();
  constructor(private readonly max: number) {}
  has(v: string): boolean {
    return this.items.has(v);
  }
  add(v: string): void {
    if (this.items.has(v)) return;
    this.items.add(v);
    if (this.items.size > this.max) {
      const oldest = this.items.values().next().value;
      if (oldest !== undefined) this.items.delete(oldest);
    }
  }
  clear(): void {
    this.items.clear();
  }
}

function num(v: unknown, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * Who to send to or type to: a user id, or `{ kind: 'user', id }`. Groups and
 * rooms are not available on the server yet, so the SDK offers no way to
 * address them.
 */
export type UserRef = string | { kind: 'user'; id: string };

function toPeer(to: UserRef): Peer {
  return typeof to === 'string' ? { kind: 'user', id: to } : { kind: 'user', id: to.id };
}

/**
 * One user's connection to Confab.
 *
 * ```ts
 * const client = new ConfabClient({ url: 'ws://127.0.0.1:8080/v1/connect' });
 * client.on('message', (m) => console.log(m.from, m.body.text));
 * await client.login({ token, deviceId: 'laptop-1', platform: 'web' });
 * const sent = await client.send('bob', 'hi bob');
 * ```
 */
export class ConfabClient extends Emitter<ConfabEvents> {
  private readonly url: string;
  private readonly opts: Resolved;
  private readonly defaults: Partial<LoginCredentials>;
  private readonly wsImpl: WebSocketConstructor | undefined;
  private readonly intercept: ConfabClientOptions['interceptInbound'];
  /** The local store (cursors and conversations). */
  readonly store: ConfabStore;

  private _state: ConnectionState = 'closed';
  private socket: WebSocketLike | undefined;
  /** Bumped for every socket; events of older sockets are ignored. */
  private gen = 0;
  private nextRid = 1;
  private readonly pending = new Map<number, PendingRequest>();

  private credentials: { token: TokenSource; deviceId: string; platform: Platform } | undefined;
  private session: LoginResult | undefined;
  /** A login succeeded and nothing has stopped the client since: reconnect on drops. */
  private armed = false;
  /** Set when the next close must not be followed by a reconnect. */
  private halt: { reason: string; error?: ConfabError } | undefined;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private goawayDelayMs: number | undefined;
  private loginInFlight: Promise<LoginResult> | undefined;
  private connectInFlight: Promise<void> | undefined;
  /** Fails the pending `openSocket` promise when its socket goes away. */
  private onGone: ((reason: string) => void) | undefined;

  // Inbox state (touched only inside the serial queue).
  private userIdForCursor: string | undefined;
  private last = 0;
  private readonly ahead = new Map<number, { m: Message; source: Source }>();
  private readonly seen: BoundedSet;
  private readonly ownIds: BoundedSet;
  private chain: Promise<unknown> = Promise.resolve();

  private readonly outbox: OutboxItem[] = [];

  constructor(options: ConfabClientOptions) {
    super();
    if (!options || typeof options.url !== 'string' || !options.url) {
      throw new ConfabError('bad_request', 'ConfabClient needs options.url (ws://host:port/v1/connect)');
    }
    this.url = options.url;
    this.wsImpl = options.WebSocket;
    this.intercept = options.interceptInbound;
    this.store = options.store ?? new MemoryStore();
    this.defaults = {
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}),
      ...(options.platform !== undefined ? { platform: options.platform } : {}),
    };
    this.opts = {
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      reconnect: options.reconnect === false ? false : { ...DEFAULT_BACKOFF, ...(options.reconnect ?? {}) },
      syncPageSize: Math.min(500, Math.max(1, options.syncPageSize ?? 100)),
      maxInFlightSends: Math.max(1, options.maxInFlightSends ?? 64),
      dedupeWindow: Math.max(100, options.dedupeWindow ?? 10_000),
    };
    this.seen = new BoundedSet(this.opts.dedupeWindow);
    this.ownIds = new BoundedSet(this.opts.dedupeWindow);
  }

  // ---------------------------------------------------------------- getters

  /** The current connection state. */
  get state(): ConnectionState {
    return this._state;
  }

  /** The logged-in user (the token's `sub`), once a login succeeded. */
  get userId(): string | undefined {
    return this.session?.user_id;
  }

  /** The last successful login's reply. */
  get lastLogin(): LoginResult | undefined {
    return this.session;
  }

  /** Highest contiguous `inbox_seq` processed: the point `sync` resumes from. */
  get lastInboxSeq(): number {
    return this.last;
  }

  /** Messages not yet acknowledged by the server, oldest first. */
  pendingSends(): PendingSend[] {
    return this.outbox.map((o) => ({
      client_msg_id: o.clientMsgId,
      to: o.to,
      body: o.body,
      attempts: o.attempts,
    }));
  }

  // ------------------------------------------------------------- lifecycle

  /**
   * Opens the WebSocket (subprotocol `confab.v1.json`). Resolves once it is
   * open. The server closes a connection that does not log in within its
   * login timeout (10 s by default), so call {@link login} next — or call
   * `login()` directly, which connects when needed.
   */
  async connect(): Promise<void> {
    if (this.socket && (this._state === 'open' || this._state === 'logged_in')) return;
    if (this.connectInFlight) return this.connectInFlight;
    this.halt = undefined;
    this.cancelReconnect();
    this.connectInFlight = this.openSocket().finally(() => {
      this.connectInFlight = undefined;
    });
    return this.connectInFlight;
  }

  /**
   * Logs in (connecting first when needed), then catches up with `sync` from
   * the last processed `inbox_seq` before resolving, and flushes the send
   * queue. From then on the client reconnects and logs in again by itself
   * after a drop, until `close()`, `logout()`, a kick, or a login refused as
   * `unauthorized` (or another error that a retry cannot fix).
   *
   * A first login that fails rejects and leaves the client `closed`; it does
   * not retry on its own.
   */
  async login(credentials?: LoginCredentials): Promise<LoginResult> {
    if (this._state === 'logged_in') {
      throw new ConfabError('already_logged_in', 'this client is already logged in');
    }
    if (this.loginInFlight) return this.loginInFlight;
    const token = credentials?.token ?? this.defaults.token;
    if (token === undefined) throw new ConfabError('bad_request', 'login needs a token');
    this.credentials = {
      token,
      deviceId: credentials?.deviceId ?? this.defaults.deviceId ?? this.credentials?.deviceId ?? `sdk-${randomId()}`,
      platform: credentials?.platform ?? this.defaults.platform ?? 'web',
    };
    this.halt = undefined;
    this.cancelReconnect();
    this.loginInFlight = (async () => {
      if (this.connectInFlight) await this.connectInFlight;
      if (!this.socket || this._state !== 'open') await this.openSocket();
      return this.authenticate();
    })().finally(() => {
      this.loginInFlight = undefined;
    });
    return this.loginInFlight;
  }

  /**
   * Logs out: the server answers and closes the connection, and forgets this
   * device for pushes. Messages still in the send queue are rejected with
   * `closed`. The client does not reconnect.
   */
  async logout(): Promise<void> {
    this.halt = { reason: 'logout' };
    this.armed = false;
    this.cancelReconnect();
    this.failOutbox(new ConfabError('closed', 'logged out before the server acknowledged the message'));
    const gen = this.gen;
    try {
      if (this._state === 'logged_in') await this.request({ op: 'logout' });
    } catch {
      // Closing anyway.
    } finally {
      this.abandon(gen, 'logout');
      this.setState('closed', { reason: 'logout' });
    }
  }

  /**
   * Closes the connection now, without logging out: the server keeps
   * storing messages for this user, and the next login resumes from the
   * cursor. Pending requests and queued messages are rejected with `closed`.
   */
  close(): void {
    this.halt = { reason: 'closed by the application' };
    this.armed = false;
    this.cancelReconnect();
    this.failOutbox(new ConfabError('closed', 'the client was closed before the server acknowledged the message'));
    this.abandon(this.gen, 'closed by the application');
    this.setState('closed', { reason: 'closed by the application' });
  }

  // ------------------------------------------------------------- messaging

  /**
   * Sends a message and resolves with the server's reply, which comes only
   * once the message is stored durably. A string `to` is a user id; a string
   * `body` is a text message.
   *
   * The message waits in the send queue while the client is not logged in
   * and is written again after every reconnect (and after a reply timeout)
   * with the same `client_msg_id`, until the server answers; the server
   * stores it once and answers repeats with the same `msg_id` and `seq`.
   * Errors a retry cannot fix (`bad_request`, `quota_exceeded`, `unsupported`,
   * …) reject the promise.
   */
  send(to: UserRef, body: string | MessageBody, options?: SendOptions): Promise<SendResult> {
    const peer = toPeer(to);
    const b: MessageBody = typeof body === 'string' ? { type: 'text', text: body } : body;
    const clientMsgId = options?.clientMsgId ?? randomId();
    this.ownIds.add(clientMsgId);
    return new Promise<SendResult>((resolve, reject) => {
      this.outbox.push({
        clientMsgId,
        to: peer,
        body: b,
        resolve,
        reject,
        inFlight: false,
        attempts: 0,
        notBefore: 0,
      });
      this.flushOutbox();
    });
  }

  /**
   * Catches up: fetches every inbox entry after the cursor (page by page
   * until `has_more` is false), emits the new ones as `message` events and
   * resolves with them. With `since` lower than the cursor, entries already
   * processed are fetched again and dropped as duplicates.
   *
   * The client calls this itself after each login and when a push reveals a
   * gap; apps rarely need to.
   */
  async sync(options?: { since?: number }): Promise<Message[]> {
    this.requireLogin();
    return this.serial(() => this.catchUp(options?.since ?? this.last));
  }

  /** One page of a conversation's stored messages, newest first (`seq < beforeSeq`). */
  async history(convId: string, options?: { beforeSeq?: number; limit?: number }): Promise<HistoryResult> {
    const frame: Frame = { op: 'history', conv_id: convId };
    if (options?.beforeSeq !== undefined) frame.before_seq = options.beforeSeq;
    if (options?.limit !== undefined) frame.limit = options.limit;
    const r = await this.request(frame);
    return {
      conv_id: str(r.conv_id) || convId,
      messages: Array.isArray(r.messages) ? (r.messages as Message[]) : [],
      has_more: r.has_more === true,
    };
  }

  /**
   * Marks a conversation read up to `seq`. Resolves with the cursor after
   * the call (it never moves back). Your other devices get `read`, the peer
   * gets `receipt`.
   */
  async read(convId: string, seq: number): Promise<ReadResult> {
    const r = await this.request({ op: 'read', conv_id: convId, seq });
    const result: ReadResult = { conv_id: str(r.conv_id) || convId, seq: num(r.seq, seq) };
    await this.serial(() => this.applyRead(result.conv_id, result.seq));
    return result;
  }

  /**
   * Lists conversations with their last message and unread counts, most
   * recent first, and refreshes the local store with them.
   */
  async conversations(options?: { limit?: number }): Promise<ConversationsResult> {
    const frame: Frame = { op: 'conversations' };
    if (options?.limit !== undefined) frame.limit = options.limit;
    const r = await this.request(frame);
    const list = Array.isArray(r.conversations) ? (r.conversations as StoredConversation[]) : [];
    const result: ConversationsResult = { conversations: list, total_unread: num(r.total_unread) };
    await this.serial(async () => {
      const uid = this.userId;
      if (!uid) return;
      for (const c of list) {
        const old = await this.store.getConversation(uid, c.conv_id);
        const merged: StoredConversation = { ...c };
        if (old) {
          // A push processed after the server built this list may be newer.
          if (old.last_seq > merged.last_seq) {
            merged.last_seq = old.last_seq;
            if (old.last_message) merged.last_message = old.last_message;
          }
          merged.read_seq = Math.max(merged.read_seq, old.read_seq);
          merged.unread = Math.max(0, merged.last_seq - merged.read_seq);
          if (old.peer_read_seq !== undefined) merged.peer_read_seq = old.peer_read_seq;
        }
        await this.store.putConversation(uid, merged);
      }
    });
    return result;
  }

  /**
   * Conversations as known locally (the store), most recently active first:
   * the last `conversations()` result updated by messages, reads and recalls
   * seen since. Needs no connection.
   */
  async localConversations(): Promise<StoredConversation[]> {
    const uid = this.userId;
    if (!uid) return [];
    const list = await this.store.listConversations(uid);
    return list.sort((a, b) => (b.last_message?.ts ?? 0) - (a.last_message?.ts ?? 0));
  }

  /** Recalls one of your own messages (within the app's recall window, 2 min by default). */
  async recall(convId: string, msgId: string): Promise<RecallResult> {
    const r = await this.request({ op: 'recall', conv_id: convId, msg_id: msgId });
    const result: RecallResult = {
      conv_id: str(r.conv_id) || convId,
      msg_id: str(r.msg_id) || msgId,
      recalled: r.recalled === true,
    };
    await this.serial(() => this.applyRecall(result.conv_id, result.msg_id));
    return result;
  }

  /** Tells a user that this user is typing. Never stored; only online devices get it. */
  async typing(to: UserRef): Promise<void> {
    await this.request({ op: 'typing', to: toPeer(to) });
  }

  /** Round trip to the server; resolves with the server's clock (ms). */
  async ping(): Promise<number> {
    const r = await this.request({ op: 'ping' }, false);
    return num(r.server_time);
  }

  // ------------------------------------------------------------ connection

  private setState(state: ConnectionState, detail: Omit<StateChange, 'previous'> = {}): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emit('state', state, { previous, ...detail });
  }

  private cancelReconnect(): void {
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private cancelFlushTimer(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Opens a new socket; on any failure the close path has already run for it. */
  private async openSocket(): Promise<void> {
    this.dropSocketQuietly();
    const gen = ++this.gen;
    this.setState('connecting');
    let ws: WebSocketLike;
    try {
      const WS = await resolveWebSocket(this.wsImpl);
      if (gen !== this.gen) throw new ConfabError('closed', 'connection attempt superseded');
      ws = new WS(this.url, [SUBPROTOCOL]);
    } catch (err) {
      const e = err instanceof ConfabError ? err : new ConfabError('transport', String(err));
      this.onClosed(gen, e.message);
      throw e;
    }
    this.socket = ws;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        this.abandon(gen, 'connect timeout');
      }, this.opts.connectTimeoutMs);
      // Called by the close path, whoever closes: the attempt failed.
      this.onGone = (reason: string) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        reject(new ConfabError('transport', `could not connect to ${this.url}: ${reason}`));
      };
      ws.onopen = () => {
        if (gen !== this.gen || settled) return;
        settled = true;
        clearTimeout(timer);
        this.setState('open');
        resolve();
      };
      ws.onmessage = (ev) => this.onData(gen, ev.data);
      // Browsers and `ws` follow 'error' with 'close', but some
      // implementations (Node 20's experimental global WebSocket) do not
      // always close a socket whose handshake failed: end it here. (The
      // handler must exist anyway: `ws` throws on an unheard error event.)
      ws.onerror = () => this.abandon(gen, settled ? 'connection error' : 'could not connect');
      ws.onclose = (ev) => this.onClosed(gen, ev?.reason || `connection closed (code ${ev?.code ?? 'unknown'})`);
    });
  }

  /** Detaches and closes the current socket without running the close path. */
  private dropSocketQuietly(reason = 'replaced'): void {
    const ws = this.socket;
    this.socket = undefined;
    const gone = this.onGone;
    this.onGone = undefined;
    gone?.(reason);
    if (!ws) return;
    ws.onopen = () => {};
    ws.onmessage = () => {};
    ws.onclose = () => {};
    ws.onerror = () => {};
    try {
      ws.close(1000, reason.slice(0, 100));
    } catch {
      // Already closing.
    }
  }

  /** Drops a socket from our side and runs the close path now. */
  private abandon(gen: number, reason: string): void {
    if (gen !== this.gen) return;
    this.dropSocketQuietly(reason);
    this.onClosed(gen, reason);
  }

  /** The one place where a connection ends: fail what waited on it, then reconnect or stop. */
  private onClosed(gen: number, reason: string): void {
    if (gen !== this.gen) return;
    this.gen++;
    this.socket = undefined;
    const gone = this.onGone;
    this.onGone = undefined;
    gone?.(reason);
    this.stopHeartbeat();
    const err = new ConfabError('disconnected', `connection closed: ${reason}`);
    for (const [rid, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(rid);
      p.reject(err);
    }
    const halt = this.halt;
    if (halt) {
      this.armed = false;
      this.setState('closed', { reason: halt.reason, ...(halt.error ? { error: halt.error } : {}) });
      return;
    }
    if (!this.armed || this.opts.reconnect === false || !this.credentials) {
      this.setState('closed', { reason });
      return;
    }
    let delay: number;
    if (this.goawayDelayMs !== undefined) {
      // Honour the server's hint, plus a little jitter so clients spread out.
      delay = this.goawayDelayMs + Math.round(Math.random() * Math.min(1000, this.goawayDelayMs * 0.25));
      this.goawayDelayMs = undefined;
    } else {
      delay = backoffDelay(this.attempt, this.opts.reconnect);
    }
    this.attempt++;
    this.cancelReconnect();
    this.setState('reconnecting', { reason, retryInMs: delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnectNow();
    }, delay);
  }

  private async reconnectNow(): Promise<void> {
    if (!this.armed || this.halt || this.loginInFlight) return;
    const attempt = (async () => {
      await this.openSocket();
      return this.authenticate();
    })();
    this.loginInFlight = attempt;
    try {
      await attempt;
    } catch {
      // The close path has scheduled the next attempt (or stopped).
    } finally {
      if (this.loginInFlight === attempt) this.loginInFlight = undefined;
    }
  }

  /** Sends `login` on the open socket and sets the session up. */
  private async authenticate(): Promise<LoginResult> {
    const creds = this.credentials;
    const gen = this.gen;
    if (!creds) throw new ConfabError('bad_request', 'login needs a token');
    // Pushes that arrive right after the login reply must be processed with
    // this session's cursor: hold the serial queue until it is loaded.
    let release!: (r: LoginResult | undefined) => void;
    const loginDone = new Promise<LoginResult | undefined>((r) => (release = r));
    const sessionReady = this.serial(async () => {
      const r = await loginDone;
      if (r) await this.beginSession(r);
    });
    let result: LoginResult;
    try {
      const token = typeof creds.token === 'function' ? await creds.token() : creds.token;
      const r = await this.request(
        { op: 'login', token, device_id: creds.deviceId, platform: creds.platform },
        false,
      );
      result = {
        user_id: str(r.user_id),
        session_id: str(r.session_id),
        server_time: num(r.server_time),
        inbox_seq: num(r.inbox_seq),
      };
    } catch (err) {
      release(undefined);
      const e = err instanceof ConfabError ? err : new ConfabError('transport', String(err));
      if (FATAL_LOGIN_CODES.has(e.code) && !this.halt) this.halt = { reason: 'login refused', error: e };
      this.abandon(gen, e.code === 'timeout' ? 'login timeout' : `login failed: ${e.code}`);
      throw e;
    }
    this.session = result;
    release(result);
    await sessionReady;
    if (gen !== this.gen) throw new ConfabError('disconnected', 'connection closed during login');
    this.armed = true;
    this.attempt = 0;
    this.setState('logged_in');
    this.startHeartbeat(gen);
    this.flushOutbox();
    try {
      await this.serial(() => this.resume(result.inbox_seq));
    } catch (err) {
      this.report(err);
    }
    return result;
  }

  private startHeartbeat(gen: number): void {
    this.stopHeartbeat();
    if (this.opts.heartbeatIntervalMs <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      if (gen !== this.gen) return this.stopHeartbeat();
      this.request({ op: 'ping' }, false).catch((err: ConfabError) => {
        if (err.code === 'timeout') this.abandon(gen, 'heartbeat timeout');
      });
    }, this.opts.heartbeatIntervalMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  // ------------------------------------------------------- request / reply

  private requireLogin(): void {
    if (this._state !== 'logged_in') {
      throw new ConfabError('not_connected', `not logged in (state: ${this._state})`);
    }
  }

  /** Sends one request and resolves with its `ok:true` reply. */
  private request(frame: Frame, needLogin = true): Promise<Frame> {
    if (needLogin && this._state !== 'logged_in') {
      return Promise.reject(new ConfabError('not_connected', `not logged in (state: ${this._state})`));
    }
    const ws = this.socket;
    if (!ws || ws.readyState !== OPEN) {
      return Promise.reject(new ConfabError('not_connected', 'no open connection'));
    }
    const rid = this.nextRid++;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(rid)) {
          reject(new ConfabError('timeout', `no reply to ${frame.op} within ${this.opts.requestTimeoutMs} ms`));
        }
      }, this.opts.requestTimeoutMs);
      this.pending.set(rid, { op: frame.op, resolve, reject, timer });
      try {
        ws.send(JSON.stringify({ ...frame, rid }));
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(rid);
        reject(new ConfabError('disconnected', `could not write to the connection: ${String(err)}`));
      }
    });
  }

  private onData(gen: number, data: unknown): void {
    if (gen !== this.gen) return;
    const text = messageText(data);
    if (text === undefined) return;
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      this.report(new ConfabError('bad_frame', 'the server sent a frame that is not JSON'));
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.op !== 'string') return;
    let frames: Frame[] = [frame];
    if (this.intercept) {
      const out = this.intercept(frame);
      frames = out == null ? [] : Array.isArray(out) ? out : [out];
    }
    for (const f of frames) this.dispatch(f);
  }

  private dispatch(f: Frame): void {
    switch (f.op) {
      case 'reply': {
        if (f.rid === undefined) {
          // bad_frame / frame_too_large / rate_limited without a request id.
          if (f.ok === false && f.error) this.report(new ConfabError(f.error.code, f.error.message));
          return;
        }
        const p = this.pending.get(f.rid);
        if (!p) return;
        this.pending.delete(f.rid);
        clearTimeout(p.timer);
        if (f.ok) p.resolve(f);
        else {
          const code = str(f.error?.code) || 'internal';
          const err = new ConfabError(code, str(f.error?.message) || code);
          // Decide now, before the server's close arrives, that this refusal is final.
          if (p.op === 'login' && FATAL_LOGIN_CODES.has(code)) this.halt = { reason: 'login refused', error: err };
          p.reject(err);
        }
        return;
      }
      case 'kicked': {
        const ev: KickedEvent = { reason: str(f.reason) };
        this.halt = { reason: 'kicked' };
        this.armed = false;
        this.emit('kicked', ev);
        return;
      }
      case 'goaway': {
        const ev: GoawayEvent = { reason: str(f.reason), retry_after_ms: num(f.retry_after_ms, 1000) };
        this.goawayDelayMs = ev.retry_after_ms;
        this.emit('goaway', ev);
        return;
      }
      case 'message': {
        const { op: _op, rid: _rid, ...rest } = f;
        void this.serial(() => this.onPushMessage(rest as unknown as Message)).catch((e) => this.report(e));
        return;
      }
      case 'read': {
        const ev: ReadEvent = { conv_id: str(f.conv_id), seq: num(f.seq) };
        void this.serial(async () => {
          await this.applyRead(ev.conv_id, ev.seq);
          this.emit('read', ev);
        }).catch((e) => this.report(e));
        return;
      }
      case 'receipt': {
        const ev: ReceiptEvent = { conv_id: str(f.conv_id), seq: num(f.seq), user_id: str(f.user_id) };
        void this.serial(async () => {
          await this.updateConversation(ev.conv_id, (c) => {
            c.peer_read_seq = Math.max(c.peer_read_seq ?? 0, ev.seq);
          });
          this.emit('receipt', ev);
        }).catch((e) => this.report(e));
        return;
      }
      case 'recalled': {
        const ev: RecalledEvent = { conv_id: str(f.conv_id), seq: num(f.seq), msg_id: str(f.msg_id) };
        void this.serial(async () => {
          await this.applyRecall(ev.conv_id, ev.msg_id);
          this.emit('recalled', ev);
        }).catch((e) => this.report(e));
        return;
      }
      case 'typing': {
        const ev: TypingEvent = { conv_id: str(f.conv_id), from: str(f.from), to: f.to as Peer };
        void this.serial(() => this.emit('typing', ev)).catch((e) => this.report(e));
        return;
      }
      default:
        // `event` (group events) is reserved and never sent today; unknown ops are ignored.
        return;
    }
  }

  private report(err: unknown): void {
    const e = err instanceof ConfabError ? err : new ConfabError('internal', String(err));
    if (CONNECTION_CODES.has(e.code)) return;
    this.emit('error', e);
  }

  // ------------------------------------------------------------ send queue

  private flushOutbox(): void {
    if (this._state !== 'logged_in') return;
    const now = Date.now();
    let inFlight = this.outbox.filter((o) => o.inFlight).length;
    let nextDue = Infinity;
    for (const item of this.outbox) {
      if (inFlight >= this.opts.maxInFlightSends) break;
      if (item.inFlight) continue;
      if (item.notBefore > now) {
        nextDue = Math.min(nextDue, item.notBefore);
        continue;
      }
      this.transmit(item);
      inFlight++;
    }
    if (nextDue !== Infinity && this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flushOutbox();
      }, nextDue - now);
    }
  }

  private transmit(item: OutboxItem): void {
    item.inFlight = true;
    item.attempts++;
    this.request({ op: 'send', to: item.to, body: item.body, client_msg_id: item.clientMsgId }).then(
      (r) => {
        item.inFlight = false;
        if (!this.removeFromOutbox(item)) return;
        const result: SendResult = {
          msg_id: str(r.msg_id),
          conv_id: str(r.conv_id),
          seq: num(r.seq),
          ts: num(r.ts),
          client_msg_id: str(r.client_msg_id) || item.clientMsgId,
        };
        if (typeof r.inbox_seq === 'number') result.inbox_seq = r.inbox_seq;
        if (typeof r.masked === 'boolean') result.masked = r.masked;
        const uid = this.userId;
        if (uid) {
          const own: Message = {
            conv_id: result.conv_id,
            seq: result.seq,
            msg_id: result.msg_id,
            from: uid,
            to: item.to,
            body: item.body,
            ts: result.ts,
            client_msg_id: result.client_msg_id,
          };
          if (result.inbox_seq !== undefined) own.inbox_seq = result.inbox_seq;
          // The sending connection gets no push for its own message: move the
          // cursor with the reply's inbox_seq so it does not look like a gap.
          void this.serial(async () => {
            const r2 = await this.ingest(own, 'own');
            if (r2.gap) await this.catchUpQuietly();
          }).catch((e) => this.report(e));
        }
        item.resolve(result);
        this.flushOutbox();
      },
      (err: ConfabError) => {
        item.inFlight = false;
        if (!this.outbox.includes(item)) return;
        if (CONNECTION_CODES.has(err.code)) {
          // Stays queued; written again after the next login.
        } else if (err.code === 'timeout' || RETRYABLE_CODES.has(err.code)) {
          const delay =
            err.code === 'timeout'
              ? 0
              : backoffDelay(item.attempts - 1, this.opts.reconnect === false ? DEFAULT_BACKOFF : this.opts.reconnect);
          item.notBefore = Date.now() + delay;
        } else {
          this.removeFromOutbox(item);
          item.reject(err);
        }
        this.flushOutbox();
      },
    );
  }

  private removeFromOutbox(item: OutboxItem): boolean {
    const i = this.outbox.indexOf(item);
    if (i < 0) return false;
    this.outbox.splice(i, 1);
    return true;
  }

  private failOutbox(err: ConfabError): void {
    this.cancelFlushTimer();
    const items = this.outbox.splice(0);
    for (const item of items) item.reject(err);
  }

  // --------------------------------------------------------------- inbox

  /** Runs tasks one at a time, in the order they were queued. */
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Loads the cursor when the user changes (first login, or another account). */
  private async beginSession(r: LoginResult): Promise<void> {
    if (this.userIdForCursor === r.user_id) return;
    this.userIdForCursor = r.user_id;
    this.ahead.clear();
    this.seen.clear();
    this.last = (await this.store.getCursor(r.user_id)) ?? 0;
  }

  /** After login: catch up from the cursor if the server has more. */
  private async resume(serverInboxSeq: number): Promise<void> {
    if (serverInboxSeq < this.last) {
      // The server's inbox is behind our cursor (a server reset, or a store
      // shared with another deployment). Follow the server; msg_id dedupe
      // still hides what was already shown.
      this.last = serverInboxSeq;
      this.ahead.clear();
      await this.saveCursor();
    }
    if (serverInboxSeq > this.last || this.ahead.size > 0) await this.catchUp(this.last);
  }

  private async onPushMessage(m: Message): Promise<void> {
    const r = await this.ingest(m, 'push');
    if (r.gap) await this.catchUpQuietly();
  }

  private async catchUpQuietly(): Promise<void> {
    try {
      await this.catchUp(this.last);
    } catch (err) {
      // A disconnect is handled by the resume after the next login.
      this.report(err);
    }
  }

  /** `sync` from `since` until `has_more` is false, processing each item. */
  private async catchUp(since: number): Promise<Message[]> {
    const delivered: Message[] = [];
    let from = since;
    for (;;) {
      const r = await this.request({ op: 'sync', since: from, limit: this.opts.syncPageSize });
      const messages = Array.isArray(r.messages) ? (r.messages as Message[]) : [];
      for (const m of messages) delivered.push(...(await this.ingest(m, 'sync')).delivered);
      const tail = messages[messages.length - 1];
      if (r.has_more !== true || !tail || typeof tail.inbox_seq !== 'number' || tail.inbox_seq <= from) break;
      from = tail.inbox_seq;
    }
    for (const s of [...this.ahead.keys()]) if (s <= this.last) this.ahead.delete(s);
    return delivered;
  }

  /**
   * Processes one inbox entry: drops repeats (by `inbox_seq` and by
   * `msg_id`), applies it if it is the next one, or holds it if it is beyond
   * a gap (and reports the gap).
   */
  private async ingest(m: Message, source: Source): Promise<{ delivered: Message[]; gap: boolean }> {
    const delivered: Message[] = [];
    if (!m || typeof m.msg_id !== 'string' || !m.msg_id) return { delivered, gap: false };
    const s = m.inbox_seq;
    if (typeof s !== 'number') {
      if (!this.seen.has(m.msg_id)) await this.deliver(m, source, delivered);
      return { delivered, gap: false };
    }
    if (s <= this.last) return { delivered, gap: false };
    if (s === this.last + 1) {
      if (this.seen.has(m.msg_id) && source !== 'own') {
        this.last = s; // Shown already; only the cursor moves.
      } else {
        await this.deliver(m, source, delivered);
        this.last = s;
      }
      this.ahead.delete(s);
      for (let next = this.ahead.get(this.last + 1); next; next = this.ahead.get(this.last + 1)) {
        this.ahead.delete(this.last + 1);
        if (!this.seen.has(next.m.msg_id) || next.source === 'own') await this.deliver(next.m, next.source, delivered);
        this.last++;
      }
      await this.saveCursor();
      return { delivered, gap: false };
    }
    if (!this.ahead.has(s)) this.ahead.set(s, { m, source });
    return { delivered, gap: true };
  }

  private async deliver(m: Message, source: Source, delivered: Message[]): Promise<void> {
    const uid = this.userId;
    const own = source === 'own' || (m.from === uid && this.ownIds.has(m.client_msg_id));
    const firstTime = !this.seen.has(m.msg_id);
    this.seen.add(m.msg_id);
    if (!firstTime) return;
    if (uid) {
      await this.updateConversation(m.conv_id, (c) => {
        if (!c.peer) c.peer = m.from === uid ? m.to : { kind: 'user', id: m.from };
        if (m.seq >= c.last_seq) {
          c.last_seq = m.seq;
          c.last_message = m;
        }
        // A sender's own messages count as read for the sender.
        if (m.from === uid) c.read_seq = Math.max(c.read_seq, m.seq);
      });
    }
    if (!own) {
      delivered.push(m);
      this.emit('message', m);
    }
  }

  private async saveCursor(): Promise<void> {
    const uid = this.userIdForCursor;
    if (uid) await this.store.setCursor(uid, this.last);
  }

  private async updateConversation(convId: string, change: (c: StoredConversation) => void): Promise<void> {
    const uid = this.userId;
    if (!uid || !convId) return;
    const c: StoredConversation = (await this.store.getConversation(uid, convId)) ?? {
      conv_id: convId,
      unread: 0,
      read_seq: 0,
      last_seq: 0,
    };
    change(c);
    c.unread = Math.max(0, c.last_seq - c.read_seq);
    await this.store.putConversation(uid, c);
  }

  private applyRead(convId: string, seq: number): Promise<void> {
    return this.updateConversation(convId, (c) => {
      c.read_seq = Math.max(c.read_seq, seq);
      c.last_seq = Math.max(c.last_seq, c.read_seq);
    });
  }

  private applyRecall(convId: string, msgId: string): Promise<void> {
    return this.updateConversation(convId, (c) => {
      if (c.last_message?.msg_id === msgId) {
        c.last_message = { ...c.last_message, body: { type: 'recalled' }, recalled: true };
      }
    });
  }
}
