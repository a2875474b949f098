import { closeQuietly } from "../async.ts";
import { ConfigError, type HttpSettings } from "../config.ts";
import { RequestFraming } from "./request_framing.ts";

/** A listening server. */
export interface Server {
  addr: Deno.NetAddr;
  /** Stops accepting, lets requests in flight finish, and closes every connection. */
  shutdown(): Promise<void>;
}

/**
 * Deno.serve behind a guard that closes a connection whose client takes more than
 * `headerTimeoutMs` to send a request's head (from its first byte, or from connecting), with the
 * reasons a listener cannot start said in terms of ADDR.
 *
 * Deno.serve has no such timeout, and without one a client that sends a partial request line
 * holds its connection for ever. So the guard accepts the connections itself, follows where each
 * request's head begins and ends (see `request_framing.ts`), and relays the bytes to Deno.serve on
 * a unix socket in a directory only this user can open. Once a head is read, the request is the
 * server's (REQUEST_TIMEOUT_MS bounds the answer); HTTP/2 with prior knowledge is relayed unjudged.
 */
export async function serve(
  config: Pick<HttpSettings, "hostname" | "port" | "headerTimeoutMs">,
  handler: Deno.ServeHandler,
): Promise<Server> {
  const listener = listen(config);
  const dir = await Deno.makeTempDir({ prefix: "dispatch-api-" });
  const path = `${dir}/api.sock`;
  const server = Deno.serve({ path, onListen: () => {} }, handler);
  const open = new Set<Deno.Conn>();
  const relays = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const client of listener) {
        const done = relay(client, { path, headerTimeoutMs: config.headerTimeoutMs, open })
          .catch(() => {});
        relays.add(done);
        done.finally(() => relays.delete(done));
      }
    } catch {
      // The listener was closed.
    }
  })();
  let stopped: Promise<void> | undefined;
  return {
    addr: listener.addr,
    shutdown() {
      stopped ??= (async () => {
        listener.close();
        await accepting;
        await server.shutdown();
        for (const conn of open) closeQuietly(conn);
        await Promise.allSettled([...relays]);
        await Deno.remove(dir, { recursive: true });
      })();
      return stopped;
    },
  };
}

function listen(config: Pick<HttpSettings, "hostname" | "port">): Deno.TcpListener {
  const addr = `${config.hostname}:${config.port}`;
  try {
    return Deno.listen({ hostname: config.hostname, port: config.port });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new ConfigError(
        `Cannot listen on ADDR "${addr}": port ${config.port} is in use by another process (stop it, or set ADDR to another port)`,
      );
    }
    if (err instanceof Deno.errors.AddrNotAvailable) {
      throw new ConfigError(
        `Cannot listen on ADDR "${addr}": ${config.hostname} is not an address of this machine`,
      );
    }
    throw err;
  }
}

/** Relays one connection to the server, closing both ends when a head takes too long. */
async function relay(
  client: Deno.Conn,
  options: { path: string; headerTimeoutMs: number; open: Set<Deno.Conn> },
): Promise<void> {
  const { open } = options;
  open.add(client);
  let server: Deno.Conn | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const close = () => {
    clearTimeout(timer);
    for (const conn of [client, server]) {
      if (conn === null) continue;
      open.delete(conn);
      closeQuietly(conn);
    }
  };
  const framing = new RequestFraming();
  // Runs from connecting, and again from each request's first byte, until its head is read.
  const watch = () => {
    if (framing.phase === "head") timer ??= setTimeout(close, options.headerTimeoutMs);
    else {
      clearTimeout(timer);
      timer = undefined;
    }
  };
  watch();
  try {
    server = await Deno.connect({ transport: "unix", path: options.path });
    open.add(server);
    const to = server;
    // Plain reads and writes rather than `readable.pipeTo(writable)`, whose streams run in
    // JavaScript for every chunk of every answer.
    const answers = copy(to, client);
    const requests = (async () => {
      await copy(client, to, (bytes) => {
        framing.push(bytes);
        watch();
      });
      // The client is done sending; what it asked for may still be on its way back.
      await to.closeWrite();
    })();
    // Over when the server is done answering, or when either side fails.
    await Promise.race([answers, requests.then(() => answers)]);
  } finally {
    close();
  }
}

/** Copies what `from` sends to `to` until `from` is done sending, showing each chunk to `seen`. */
async function copy(from: Deno.Conn, to: Deno.Conn, seen?: (bytes: Uint8Array) => void) {
  const buffer = new Uint8Array(64 * 1024);
  for (let n; (n = await from.read(buffer)) !== null;) {
    const bytes = buffer.subarray(0, n);
    seen?.(bytes);
    await writeAll(to, bytes);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}
