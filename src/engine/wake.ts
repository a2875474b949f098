/**
 * The one way workers learn of new work: the engine calls `wake()` after a
 * change that made deliveries due, and that runs this process's own
 * listeners at once (the embedded database cannot LISTEN) and sends one
 * NOTIFY for the other processes. NOTIFYs do not pile up: while one is
 * being sent, any number of wakes make one more. Each NOTIFY carries the
 * waker's `origin`, so that this process's own listener can leave out what
 * its workers already had: at a low rate that echo cost a claim an event,
 * and a new event waited for the claim loop to finish it.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../observability/log.ts";

export interface Waker {
  /** Work became due: tell this process's workers, then every other process. */
  wake(): void;
  /** Runs `listener` on every wake; returns what removes it. */
  onWake(listener: () => void): () => void;
  /** Resolves once the NOTIFY being sent, if any, is done. */
  settled(): Promise<void>;
  /** The payload of this waker's NOTIFYs (`dispatch_publish()` sends an empty one). */
  readonly origin: string;
}

export function createWaker(deps: { sql: Sql; channel: string; log: Logger }): Waker {
  const listeners = new Set<() => void>();
  let sending: Promise<void> | null = null;
  let again = false;
  const origin = crypto.randomUUID();

  async function notify(): Promise<void> {
    try {
      do {
        again = false;
        await deps.sql`SELECT pg_notify(${deps.channel}, ${origin})`;
      } while (again);
    } catch (err) {
      // The change itself is committed: other processes find it at their next poll.
      deps.log.debug("NOTIFY failed; other processes find the work at their next poll", {
        error: err,
      });
    } finally {
      sending = null;
    }
  }

  return {
    wake() {
      for (const listener of listeners) listener();
      if (sending) again = true;
      else sending = notify();
    },
    onWake(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async settled() {
      while (sending) await sending;
    },
    origin,
  };
}
