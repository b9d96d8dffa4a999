/**
 * Which WebSocket implementation to use: the one passed in the options, else
 * the global `WebSocket` (browsers, Deno, Bun, Node ≥ 22), else the `ws`
 * package (Node 20, where the global one is still behind a flag).
 *
 * @module
 */

import { ConfabError } from './errors.js';

/** The JSON subprotocol; the only one this SDK speaks. */
export const SUBPROTOCOL = 'confab.v1.json';

/**
 * The part of the WHATWG `WebSocket` interface the SDK uses. The browser's
 * `WebSocket`, Node's global one and `ws` all satisfy it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A `WebSocket` constructor (`globalThis.WebSocket`, or `WebSocket` from `ws`). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** WebSocket `readyState` for an open socket. */
export const OPEN = 1;

let cached: WebSocketConstructor | undefined;

/** Finds a WebSocket implementation for this runtime. */
export async function resolveWebSocket(explicit?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (explicit) return explicit;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  if (cached) return cached;
  // A computed specifier keeps browser bundlers from pulling `ws` in; this
  // branch only runs where there is no global WebSocket (Node 20).
  const specifier = 'ws';
  try {
    const mod = (await import(/* @vite-ignore */ specifier)) as {
      WebSocket?: WebSocketConstructor;
      default?: WebSocketConstructor;
    };
    cached = mod.WebSocket ?? mod.default;
  } catch {
    cached = undefined;
  }
  if (!cached) {
    throw new ConfabError(
      'transport',
      'no WebSocket implementation: install the `ws` package or pass options.WebSocket',
    );
  }
  return cached;
}

/** Text of a WebSocket message event, or undefined for binary data. */
export function messageText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  return undefined;
}
