/**
 * A TCP proxy on 127.0.0.1 in front of the database, to fail it on cue: cut
 * every connection at once (a restart or network failure as the client sees
 * it), go down for a while (connections refused), or stall (connections
 * stay open and nothing moves), in both directions or only for replies.
 */
export interface TcpProxy {
  port: number;
  /** Closes every open connection; new ones are still accepted. */
  cut(): void;
  /** Cuts every connection and refuses new ones until `up()`. */
  down(): Promise<void>;
  up(): void;
  /**
   * Stops moving bytes without closing anything, until `flow()`: `"replies"`
   * holds only what the server sends (a statement commits, its answer does not arrive).
   */
  stall(which?: "both" | "replies"): void;
  flow(): void;
  close(): Promise<void>;
}

export function startTcpProxy(target: { hostname: string; port: number }): TcpProxy {
  let listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const open = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();
  let stalled: "both" | "replies" | null = null;
  let flowing = Promise.withResolvers<void>();
  flowing.resolve();
  let closed = false;
  let isDown = false;

  const track = (p: Promise<void>) => {
    pipes.add(p);
    p.finally(() => pipes.delete(p));
  };
  const close = (c: Deno.Conn) => {
    if (open.delete(c)) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  };
  const pipe = async (from: Deno.Conn, to: Deno.Conn, reply: boolean) => {
    try {
      for await (const chunk of from.readable.values({ preventCancel: true })) {
        while (stalled === "both" || (stalled === "replies" && reply)) await flowing.promise;
        if (!open.has(to)) break;
        const w = to.writable.getWriter();
        try {
          await w.write(chunk);
        } finally {
          w.releaseLock();
        }
      }
    } catch { /* cut */ }
    close(from);
    close(to);
  };
  const accept = async (l: Deno.Listener) => {
    try {
      for await (const client of l) {
        let server: Deno.Conn;
        try {
          server = await Deno.connect(target);
        } catch {
          client.close();
          continue;
        }
        open.add(client);
        open.add(server);
        track(pipe(client, server, false));
        track(pipe(server, client, true));
      }
    } catch { /* listener closed */ }
  };
  let accepting = accept(listener);

  const proxy: TcpProxy = {
    port,
    cut() {
      for (const c of [...open]) close(c);
    },
    async down() {
      isDown = true;
      listener.close();
      await accepting;
      proxy.cut();
    },
    up() {
      if (closed || !isDown) return;
      isDown = false;
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      accepting = accept(listener);
    },
    stall(which = "both") {
      if (stalled === null) flowing = Promise.withResolvers<void>();
      stalled = which;
    },
    flow() {
      stalled = null;
      flowing.resolve();
    },
    async close() {
      closed = true;
      proxy.flow();
      if (!isDown) listener.close();
      await accepting;
      proxy.cut();
      await Promise.allSettled([...pipes]);
    },
  };
  return proxy;
}

/** `url` with its host replaced by the proxy's, for a database URL. */
export function throughProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.host = `127.0.0.1:${proxy.port}`;
  return u.toString();
}
