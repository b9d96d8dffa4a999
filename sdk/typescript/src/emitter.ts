/**
 * A tiny typed event emitter that works the same in browsers and Node (no
 * dependency on `node:events`).
 *
 * @module
 */

/** Any listener function. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Listener = (...args: any[]) => void;

/** Map of event name to listener signature (an interface works). */
export type EventMap<E> = { [K in keyof E]: Listener };

/** Typed `on`/`off`/`once`. A listener that throws is reported and does not stop the others. */
export class Emitter<E extends EventMap<E>> {
  private readonly listeners = new Map<keyof E, Set<Listener>>();


  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: E[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that runs at most once. */
  once<K extends keyof E>(event: K, listener: E[K]): () => void {
    const wrapper = ((...args: Parameters<E[K]>) => {
      off();
      listener(...args);
    }) as E[K];
    const off = this.on(event, wrapper);
    return off;
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof E>(event: K, listener: E[K]): void {
    this.listeners.get(event)?.delete(listener);
  }

  protected emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        // A broken listener must not break the connection logic that emitted.
        console.error(`confab: a '${String(event)}' listener threw`, err);
      }
    }
  }
}
