import type { Logger } from "../observability/log.ts";

export interface OutageOptions {
  /** A statement that succeeds only when the database answers, e.g. `SELECT 1`. */
  probe: () => Promise<unknown>;
  /** How often the probe runs while the database is unreachable; default 500 ms. */
  intervalMs?: number;
}

/**
 * Reports an unreachable database as an operator expects an expected outage:
 * one `warn` when the first request is refused for it, and one `info` when a
 * probe finds it answering again, with the count of requests refused in
 * between. The per-request answers (503 with Retry-After) log nothing more.
 */
export class DatabaseOutage {
  #log: Logger;
  #probe: () => Promise<unknown>;
  #intervalMs: number;
  #since: number | null = null;
  #refused = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  constructor(log: Logger, options: OutageOptions) {
    this.#log = log;
    this.#probe = options.probe;
    this.#intervalMs = options.intervalMs ?? 500;
  }

  /** True from the first refused request until the probe succeeds. */
  get down(): boolean {
    return this.#since !== null;
  }

  /** A request was answered 503 because the database could not be reached. */
  refused(err: unknown, request: { method: string; path: string }): void {
    this.#refused++;
    if (this.#since !== null || this.#closed) return;
    this.#since = Date.now();
    const { code, message } = err as { code?: unknown; message?: unknown };
    this.#log.warn("Database unreachable: requests that need it answer 503 until it is back", {
      ...request,
      error: typeof message === "string" ? message : String(err),
      ...(typeof code === "string" ? { code } : {}),
    });
    this.#schedule();
  }

  /**
   * Stops probing, before the pool ends: a probe under way (on a connection
   * that does not answer) then fails with the pool and is not repeated.
   */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#check();
    }, this.#intervalMs);
  }

  async #check(): Promise<void> {
    try {
      await this.#probe();
    } catch {
      return this.#schedule();
    }
    this.#log.info("Database reachable again", {
      refused: this.#refused,
      down_ms: Date.now() - this.#since!,
    });
    this.#since = null;
    this.#refused = 0;
  }
}
