/** What happens on SIGINT and SIGTERM. */
export interface StopHandlers {
  /** The first signal: a graceful stop. */
  stop(): void;
  /** A later signal, while the graceful stop runs: give up on it. */
  again(): void;
}

/**
 * A terminal's Ctrl+C sends SIGINT to its whole foreground process group,
 * and `deno task` forwards the copy it got to its child too: one keypress
 * arrives twice, a few milliseconds apart. A SIGINT this soon after the
 * first is taken for the same keypress.
 */
const SAME_KEYPRESS_MS = 500;

/** Listens for SIGINT and SIGTERM until the process exits. */
export function onStopSignals(handlers: StopHandlers): void {
  let first: { signal: Deno.Signal; at: number } | null = null;
  const listener = (signal: Deno.Signal) => () => {
    const now = performance.now();
    if (first === null) {
      first = { signal, at: now };
      handlers.stop();
      return;
    }
    const echo = signal === "SIGINT" && first.signal === "SIGINT" &&
      now - first.at < SAME_KEYPRESS_MS;
    if (!echo) handlers.again();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, listener(signal));
  }
}
