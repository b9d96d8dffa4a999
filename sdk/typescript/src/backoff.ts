/**
 * Reconnect delays: exponential backoff with jitter, so that thousands of
 * clients that lost the same server do not come back in lock step.
 *
 * @module
 */

/** Reconnect timing. All fields are optional in `ConfabClientOptions.reconnect`. */
export interface BackoffOptions {
  /** Delay before the first retry. Default 500 ms. */
  initialDelayMs: number;
  /** Upper bound of the delay. Default 30 000 ms. */
  maxDelayMs: number;
  /** Growth per failed attempt. Default 2. */
  factor: number;
  /**
   * Fraction of the delay that is random, 0–1. With 0.5 the delay is drawn
   * uniformly from [d/2, d]. Default 0.5.
   */
  jitter: number;
}

/** The defaults used when `reconnect` options are left out. */
export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
};

/**
 * Delay before retry number `attempt` (0 for the first retry):
 * `min(max, initial × factor^attempt)`, of which a `jitter` fraction is random.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(opts.maxDelayMs, opts.initialDelayMs * Math.pow(opts.factor, Math.max(0, attempt)));
  const jitter = Math.min(1, Math.max(0, opts.jitter));
  return Math.round(base * (1 - jitter * random()));
}
