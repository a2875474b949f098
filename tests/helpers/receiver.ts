export interface Received {
  headers: Headers;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Resolves once `n` requests have arrived in all. */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/**
 * A real HTTP endpoint on 127.0.0.1, port 0. `respond` decides each answer
 * (default 200); requests are recorded before it runs.
 */
export function startReceiver(
  respond: (req: Received, index: number) => Response | Promise<Response> = () =>
    new Response("ok"),
): Receiver {
  const received: Received[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const r = { headers: req.headers, body: await req.text(), at: performance.now() };
    const index = received.push(r) - 1;
    for (const w of waiters.filter((w) => received.length >= w.n)) w.resolve();
    return await respond(r, index);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    received,
    async waitFor(n, timeoutMs = 10_000) {
      if (received.length < n) {
        const { promise, resolve } = Promise.withResolvers<void>();
        waiters.push({ n, resolve });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) =>
          timer = setTimeout(
            () => reject(new Error(`Receiver got ${received.length} of ${n} requests in time`)),
            timeoutMs,
          )
        );
        try {
          await Promise.race([promise, late]);
        } finally {
          clearTimeout(timer);
        }
      }
      return received;
    },
    async close() {
      await server.shutdown();
    },
  };
}
