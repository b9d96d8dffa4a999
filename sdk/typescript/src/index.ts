/**
 * Confab TypeScript SDK: a typed client for Confab protocol v1 over
 * WebSocket (JSON subprotocol `confab.v1.json`), for browsers and Node ≥ 20.
 *
 * Start with {@link ConfabClient}.
 *
 * @packageDocumentation
 */

export {
  ConfabClient,
  type ConfabClientOptions,
  type ConfabEvents,
  type ConnectionState,
  type LoginCredentials,
  type PendingSend,
  type SendOptions,
  type StateChange,
  type TokenSource,
  type UserRef,
} from './client.js';
export { ConfabError, isRetryable, RETRYABLE_CODES, type ClientErrorCode, type ErrorCode, type ServerErrorCode } from './errors.js';
export { MemoryStore, type Awaitable, type ConfabStore } from './store.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { SUBPROTOCOL, type WebSocketConstructor, type WebSocketLike } from './transport.js';
export { Emitter, type EventMap, type Listener } from './emitter.js';
export type * from './types.js';
