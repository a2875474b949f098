import type { Sql } from "../db/pool.ts";
import type { Logger } from "../observability/log.ts";

export interface Listener {
  close(): Promise<void>;
}

/**
 * LISTENs on the channel (postgres.js keeps a dedicated connection and
 * reconnects it by itself). `onWake` also runs on every (re)connect, since
 * notifications sent while disconnected are lost, but not for a
 * notification whose payload is `ignore` (this process's own, whose workers
 * were woken directly).
 */
export async function listen(
  deps: { sql: Sql; log: Logger },
  channel: string,
  onWake: () => void,
  options: { ignore?: string } = {},
): Promise<Listener> {
  const sub = await deps.sql.listen(channel, (payload) => {
    if (payload !== options.ignore) onWake();
  }, onWake);
  return {
    async close() {
      try {
        await sub.unlisten();
      } catch (err) {
        deps.log.debug("UNLISTEN failed during shutdown", { error: err });
      }
    },
  };
}
