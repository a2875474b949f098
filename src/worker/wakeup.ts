/**
 * A level-triggered wake-up: a `notify()` that lands while nobody waits is
 * remembered, so a wake between "claimed nothing" and "wait" is never lost.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | null = null;

  notify(): void {
    this.#pending = true;
    this.#resolve?.();
  }

  /** Resolves on the next notify (or a remembered one), or after `ms`. */
  async wait(ms: number): Promise<void> {
    if (!this.#pending) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#resolve = done;
      });
      this.#resolve = null;
    }
    this.#pending = false;
  }
}
