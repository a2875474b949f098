/**
 * A TCP proxy on 127.0.0.1 that can cut every connection through it at
 * once: a database restart or network failure, as the client sees it.
 */
export interface TcpProxy {
  port: number;
  /** Closes every open connection; new ones are still accepted. */
  cut(): void;
  close(): Promise<void>;
}

export function startTcpProxy(target: { hostname: string; port: number }): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();
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
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      for await (const chunk of from.readable.values({ preventCancel: true })) {
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
  const accepting = (async () => {
    for await (const client of listener) {
      let server: Deno.Conn;
      try {
        server = await Deno.connect(target);
      } catch {
        client.close();
        continue;
      }
      open.add(client);
      open.add(server);
      track(pipe(client, server));
      track(pipe(server, client));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      for (const c of [...open]) close(c);
    },
    async close() {
      listener.close();
      await accepting.catch(() => {});
      for (const c of [...open]) close(c);
      await Promise.allSettled([...pipes]);
    },
  };
}
