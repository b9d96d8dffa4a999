/**
 * Types of Confab protocol v1 as it travels in the JSON encoding
 * (`confab.v1.json`).
 *
 * Data objects keep the wire's snake_case names (`conv_id`, `inbox_seq`, ...)
 * so that what you read here is exactly what `docs/protocol.md` describes;
 * only the SDK's own options use camelCase.
 *
 * @module
 */

/** Platforms accepted by `login`. The kick policy works per platform. */
export type Platform = 'ios' | 'android' | 'web' | 'desktop' | 'other';

/**
 * Where a message goes. `user` and `group` work on the server today; `room`
 * is answered with `unsupported`. (The SDK has no helpers for the `group_*`
 * ops yet: see docs/protocol.md §4.15.)
 */
export interface Peer {
  kind: 'user' | 'group' | 'room';
  /** 1–64 characters from `A-Z a-z 0-9 _ . @ -`. */
  id: string;
}

/**
 * A message body: a JSON object with a `type` (`text`, `image`, `file`,
 * `audio`, `video`, `location`, `custom`; `recalled` once recalled). A `text`
 * body needs a non-empty `text`. Other keys are free-form and are stored and
 * forwarded as sent.
 */
export interface MessageBody {
  type: string;
  text?: string;
  [key: string]: unknown;
}

/** A stored message, as carried by `message` pushes and `sync`/`history` replies. */
export interface Message {
  /**
   * Position in the receiving user's inbox (1, 2, 3, … with no gaps). Present
   * on `message` pushes and `sync` items, absent on `history` items.
   */
  inbox_seq?: number;
  /** `p2p:<a>:<b>` with a ≤ b in byte order. */
  conv_id: string;
  /** Position in the conversation (1, 2, 3, …), the same for every member. */
  seq: number;
  /** ULID given by the server: the identity used for de-duplication. */
  msg_id: string;
  /** Sender's user id. */
  from: string;
  to: Peer;
  body: MessageBody;
  /** Server time, milliseconds since the Unix epoch. */
  ts: number;
  client_msg_id: string;
  /** Present (and true) once the sender recalled the message. */
  recalled?: boolean;
}

/** One conversation, as returned by `conversations`. */
export interface Conversation {
  conv_id: string;
  /** The other user, in single chat. */
  peer?: Peer;
  last_message?: Message;
  /** `last_seq - read_seq`. */
  unread: number;
  /** Highest seq this user has read. */
  read_seq: number;
  /** Highest seq in the conversation. */
  last_seq: number;
}

/**
 * A conversation as kept in the {@link ConfabStore}: the server's view plus
 * what the SDK learned from pushes since.
 */
export interface StoredConversation extends Conversation {
  /** The peer's read cursor, from `receipt` pushes (not known after a restart). */
  peer_read_seq?: number;
}

/** Error object carried by a failed reply. */
export interface WireError {
  code: string;
  message: string;
}

/**
 * One JSON frame: a request, a reply or a push. The protocol has one flat
 * frame shape; only `op` is always present.
 */
export interface Frame {
  op: string;
  rid?: number;
  ok?: boolean;
  error?: WireError;
  [field: string]: unknown;
}

/** Result of a successful `login`. */
export interface LoginResult {
  /** The token's `sub`. */
  user_id: string;
  /** A new ULID for this session. */
  session_id: string;
  /** Server clock, ms since the epoch. */
  server_time: number;
  /** The user's latest inbox sequence on the server. */
  inbox_seq: number;
}

/** Result of a `send`, taken from the server's reply (sent only once the message is durable). */
export interface SendResult {
  msg_id: string;
  conv_id: string;
  seq: number;
  ts: number;
  client_msg_id: string;
  /**
   * Position of this message in the sender's own inbox. Absent when the server
   * recognised the `client_msg_id` as a repeat (the original `msg_id`/`seq`
   * are returned).
   */
  inbox_seq?: number;
  /** Always false today (no moderation on the server yet). */
  masked?: boolean;
}

/** A page of `history`. */
export interface HistoryResult {
  conv_id: string;
  /** Newest first. */
  messages: Message[];
  has_more: boolean;
}

/** Result of `read`. */
export interface ReadResult {
  conv_id: string;
  /** The read cursor after the call (capped at the last seq, never moves back). */
  seq: number;
}

/** Result of `conversations`. */
export interface ConversationsResult {
  /** Most recently active first. */
  conversations: Conversation[];
  /** Sum of `unread` over all of the user's conversations, not only the listed ones. */
  total_unread: number;
}

/** Result of `recall`. */
export interface RecallResult {
  conv_id: string;
  msg_id: string;
  recalled: boolean;
}

/** `read` push: this user read up to `seq` on another device. */
export interface ReadEvent {
  conv_id: string;
  seq: number;
}

/** `receipt` push: the peer (`user_id`, the reader) read up to `seq`. */
export interface ReceiptEvent {
  conv_id: string;
  seq: number;
  user_id: string;
}

/** `recalled` push: a message was recalled by its sender. */
export interface RecalledEvent {
  conv_id: string;
  seq: number;
  msg_id: string;
}

/** `typing` push: transient, never stored. */
export interface TypingEvent {
  conv_id: string;
  from: string;
  to: Peer;
}

/** `kicked` push: another login replaced this session. The SDK does not reconnect. */
export interface KickedEvent {
  reason: string;
}

/** `goaway` push: the server is shutting down. The SDK reconnects after `retry_after_ms`. */
export interface GoawayEvent {
  reason: string;
  retry_after_ms: number;
}
