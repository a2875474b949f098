/**
 * An HTTP forward proxy on 127.0.0.1 that counts what it is asked: CONNECT
 * tunnels (joined to their target) and plain absolute-form requests
 * (answered 502, never forwarded). With `credentials`, a request without
 * that `Proxy-Authorization: Basic …` is answered 407.
 *
 * @module
 */
import { closeQuietly } from "../../src/async.ts";

export interface ForwardProxy {
  url: string;
  /** The authority (`host:port`) of each CONNECT it let through. */
  connects: string[];
  /** The request line of each plain request. */
  plain: string[];
  /** Requests answered 407. */
  refused: number;
  close(): Promise<void>;
}

export function startForwardProxy(
  options: { credentials?: { username: string; password: string } } = {},
): ForwardProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const expected = options.credentials &&
    `Basic ${btoa(`${options.credentials.username}:${options.credentials.password}`)}`;
  const open = new Set<Deno.Conn>();
  const jobs = new Set<Promise<void>>();
  const proxy: ForwardProxy = {
    url: `http://127.0.0.1:${listener.addr.port}`,
    connects: [],
    plain: [],
    refused: 0,
    async close() {
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await accepting;
      await Promise.allSettled([...jobs]);
    },
  };
  const answer = (conn: Deno.Conn, head: string) => conn.write(new TextEncoder().encode(head));

  async function serve(conn: Deno.Conn): Promise<void> {
    let head = "";
    const byte = new Uint8Array(1);
    while (!head.endsWith("\r\n\r\n")) {
      if ((await conn.read(byte)) === null) return;
      head += String.fromCharCode(byte[0]!);
    }
    const [line = "", ...fields] = head.trimEnd().split("\r\n");
    const authorization = fields.find((f) => /^proxy-authorization:/i.test(f))
      ?.replace(/^[^:]*:\s*/, "");
    if (expected !== undefined && authorization !== expected) {
      proxy.refused++;
      return void await answer(conn, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    }
    const [method, target = ""] = line.split(" ");
    if (method !== "CONNECT") {
      proxy.plain.push(line);
      return void await answer(conn, "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
    }
    proxy.connects.push(target);
    const { hostname, port } = new URL(`http://${target}`);
    const upstream = await Deno.connect({
      hostname: hostname.replace(/^\[|\]$/g, ""),
      port: +port,
    });
    open.add(upstream);
    try {
      await answer(conn, "HTTP/1.1 200 Connection Established\r\n\r\n");
      await Promise.any([
        conn.readable.pipeTo(upstream.writable, { preventClose: true }),
        upstream.readable.pipeTo(conn.writable, { preventClose: true }),
      ]);
    } finally {
      open.delete(upstream);
      closeQuietly(upstream);
    }
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        open.add(conn);
        const job = serve(conn).catch(() => {}).finally(() => {
          open.delete(conn);
          closeQuietly(conn);
        });
        jobs.add(job);
        job.finally(() => jobs.delete(job));
      }
    } catch {
      // Closed.
    }
  })();
  return proxy;
}
