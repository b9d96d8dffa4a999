/**
 * The one error type of the SDK: server error replies keep their stable
 * `code`; failures the SDK detects itself use the client codes below.
 *
 * @module
 */

/** Error codes sent by the server (docs/protocol.md §5). Unknown codes may appear; treat them as a failure of that one request. */
export type ServerErrorCode =
  | 'bad_frame'
  | 'bad_request'
  | 'unknown_op'
  | 'frame_too_large'
  | 'unauthorized'
  | 'not_logged_in'
  | 'already_logged_in'
  | 'not_found'
  | 'forbidden'
  | 'recall_window_passed'
  | 'content_blocked'
  | 'quota_exceeded'
  | 'rate_limited'
  | 'unavailable'
  | 'internal'
  | 'unsupported'
  | 'conflict'
  | 'suspended'
  | 'muted';

/**
 * Codes produced by the SDK itself:
 * - `timeout`: no reply within `requestTimeoutMs`.
 * - `disconnected`: the connection dropped before the reply came.
 * - `not_connected`: the request needs a logged-in session and there is none.
 * - `closed`: the client was closed (`close()`/`logout()`) before the request completed.
 * - `transport`: the WebSocket could not be opened.
 */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'not_connected' | 'closed' | 'transport';

/** Any code a {@link ConfabError} can carry. */
export type ErrorCode = ServerErrorCode | ClientErrorCode | (string & {});

/** A failed request or connection. `code` is stable; `message` is for people. */
export class ConfabError extends Error {
  override readonly name = 'ConfabError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Server codes after which sending the same request again may succeed.
 * Everything else (including unknown codes) fails the request for good.
 */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(['unavailable', 'rate_limited', 'internal']);

/** True for errors where trying the same request later can succeed. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof ConfabError)) return false;
  return (
    RETRYABLE_CODES.has(err.code) ||
    err.code === 'timeout' ||
    err.code === 'disconnected' ||
    err.code === 'not_connected'
  );
}
