/**
 * A `fetch` client whose connection goes to the address the SSRF guard
 * checked, not to whatever a second DNS look-up answers (DNS rebinding).
 *
 * `fetch` takes no address, but it takes a SOCKS5 proxy: with `socks5h` it
 * hands the proxy the host name and then speaks to the origin through the
 * tunnel, so the `Host` header, TLS's server name and the certificate check
 * are the URL's own. The proxy here is a loopback listener for one attempt
 * that ignores the name it is given and connects to the checked address.
 * A random user name and password keep other local processes out of it.
 *
 * @module
 */
import { closeQuietly } from "../async.ts";
import { randomHex } from "../ids.ts";

/** A client for one attempt; close it once the answer is read. */
export interface PinnedClient {
  client: Deno.HttpClient;
  close(): Promise<void>;
}

/** Options for {@linkcode pinnedClient}. */
export interface PinnedClientOptions {
  /** Root certificates (PEM) to trust besides the system's. */
  caCerts?: string[];
}

/** Starts a tunnel to `target` and a client that uses it. */
export function pinnedClient(
  target: { address: string; port: number },
  options: PinnedClientOptions = {},
): PinnedClient {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const user = randomHex(16);
  const password = randomHex(16);
  const closing = new AbortController();
  const open = new Set<Deno.Conn>();
  const tunnels = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        open.add(conn);
        const tunnel = relay(conn, { ...target, user, password, signal: closing.signal, open })
          .catch(() => {})
          .finally(() => {
            open.delete(conn);
            closeQuietly(conn);
          });
        tunnels.add(tunnel);
        tunnel.finally(() => tunnels.delete(tunnel));
      }
    } catch {
      // The listener was closed.
    }
  })();
  const client = Deno.createHttpClient({
    proxy: { url: `socks5h://${user}:${password}@127.0.0.1:${listener.addr.port}` },
    ...options,
  });
  return {
    client,
    async close() {
      client.close();
      closing.abort();
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await accepting;
      await Promise.allSettled([...tunnels]);
    },
  };
}

// RFC 1928 (SOCKS5) and RFC 1929 (its user name and password).
const VERSION = 5;
const USER_PASSWORD = 2;
const NO_ACCEPTABLE_METHOD = 0xff;
const CONNECT = 1;
const SUCCEEDED = 0;
const GENERAL_FAILURE = 1;
const CONNECTION_REFUSED = 5;

/** One SOCKS5 connection: checks the credentials, then joins it to the checked address. */
async function relay(
  conn: Deno.Conn,
  options: {
    address: string;
    port: number;
    user: string;
    password: string;
    signal: AbortSignal;
    open: Set<Deno.Conn>;
  },
): Promise<void> {
  const read = reader(conn);
  const [version, count] = await read(2);
  const methods = await read(count!);
  if (version !== VERSION || !methods.includes(USER_PASSWORD)) {
    return void await conn.write(new Uint8Array([VERSION, NO_ACCEPTABLE_METHOD]));
  }
  await conn.write(new Uint8Array([VERSION, USER_PASSWORD]));
  const [, userLength] = await read(2);
  const user = text(await read(userLength!));
  const [passwordLength] = await read(1);
  const password = text(await read(passwordLength!));
  if (user !== options.user || password !== options.password) {
    return void await conn.write(new Uint8Array([1, 1]));
  }
  await conn.write(new Uint8Array([1, 0]));
  const [, command, , addressType] = await read(4);
  // The address asked for is read and ignored: the checked one is used instead.
  await read(addressType === 1 ? 4 : addressType === 4 ? 16 : (await read(1))[0]!);
  await read(2);
  if (command !== CONNECT) return void await conn.write(reply(GENERAL_FAILURE));
  let upstream: Deno.TcpConn;
  try {
    upstream = await Deno.connect({
      hostname: options.address,
      port: options.port,
      signal: options.signal,
    });
  } catch (err) {
    const refused = err instanceof Deno.errors.ConnectionRefused;
    return void await conn.write(reply(refused ? CONNECTION_REFUSED : GENERAL_FAILURE));
  }
  options.open.add(upstream);
  try {
    await conn.write(reply(SUCCEEDED));
    await Promise.any([
      conn.readable.pipeTo(upstream.writable, { preventClose: true }),
      upstream.readable.pipeTo(conn.writable, { preventClose: true }),
    ]);
  } finally {
    options.open.delete(upstream);
    closeQuietly(upstream);
  }
}

/** A SOCKS5 reply; the bound address (0.0.0.0:0) is not used by clients. */
function reply(code: number): Uint8Array {
  return new Uint8Array([VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/** Reads exactly n bytes at a time; rejects if the connection ends first. */
function reader(conn: Deno.Conn) {
  return async (n: number): Promise<Uint8Array> => {
    const bytes = new Uint8Array(n);
    for (let offset = 0; offset < n;) {
      const got = await conn.read(bytes.subarray(offset));
      if (got === null) throw new Error("The SOCKS client hung up");
      offset += got;
    }
    return bytes;
  };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
