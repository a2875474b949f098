/**
 * A `fetch` client whose connections go to addresses the SSRF guard checked,
 * not to whatever a second DNS look-up answers (DNS rebinding).
 *
 * `fetch` takes no address, but it takes a SOCKS5 proxy: with `socks5h` it
 * hands the proxy the host name and then speaks to the origin through the
 * tunnel, so the `Host` header, TLS's server name and the certificate check
 * are the URL's own. The proxy here is a loopback listener that looks the
 * name up in its pins (what an attempt checked) and connects to the pinned
 * address, directly or by CONNECT through an egress proxy; a name nobody
 * pinned is refused. A random user name and password keep other local
 * processes out of it. One client lives as long as its owner wants (a
 * subscription's certificate): each attempt pins what it checked.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { closeQuietly } from "../async.ts";
import { randomHex } from "../ids.ts";

/** A client with its tunnel; close it once nothing uses it. */
export interface PinnedClient {
  client: Deno.HttpClient;
  /**
   * Lets connections to `host:port` go to `address` (the guard checked it)
   * until the returned function is called.
   */
  pin(target: { host: string; port: number; address: string }): () => void;
  close(): Promise<void>;
}

/** An HTTP proxy that connections go through, by CONNECT. */
export interface EgressProxy {
  hostname: string;
  port: number;
  /** `Proxy-Authorization` value, e.g. `Basic …`; null sends none. */
  authorization: string | null;
}

/** Options for {@linkcode pinnedClient}. */
export interface PinnedClientOptions {
  /** Root certificates (PEM) to trust besides the system's. */
  caCerts?: string[];
  /** A client certificate chain (PEM) and its key, presented when the server asks. */
  cert?: string;
  key?: string;
  /** Connect through this proxy instead of directly. */
  proxy?: EgressProxy | null;
  /**
   * Told why the proxy failed a connection: the attempt only sees a SOCKS
   * failure. The reason names no credentials.
   */
  onProxyFailure?: (reason: string) => void;
}

/** Starts a tunnel and a client that uses it. */
export function pinnedClient(options: PinnedClientOptions = {}): PinnedClient {
  const { proxy = null, onProxyFailure = () => {}, ...tls } = options;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const user = randomHex(16);
  const password = randomHex(16);
  const closing = new AbortController();
  const open = new Set<Deno.Conn>();
  const tunnels = new Set<Promise<void>>();
  // Per host:port, the addresses pinned by attempts in progress; the latest is used.
  const pins = new Map<string, string[]>();
  const lookUp = (host: string, port: number) => pins.get(pinKey(host, port))?.at(-1) ?? null;
  let client: Deno.HttpClient;
  try {
    client = Deno.createHttpClient({
      proxy: { url: `socks5h://${user}:${password}@127.0.0.1:${listener.addr.port}` },
      ...tls,
    });
  } catch (err) {
    // A certificate or key Deno cannot use: nothing may stay open.
    listener.close();
    throw err;
  }
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        open.add(conn);
        const settings = {
          user,
          password,
          signal: closing.signal,
          open,
          lookUp,
          proxy,
          onProxyFailure,
        };
        const tunnel = relay(conn, settings)
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
  return {
    client,
    pin({ host, port, address }) {
      const key = pinKey(host, port);
      pins.set(key, [...pins.get(key) ?? [], address]);
      let pinned = true;
      return () => {
        if (!pinned) return;
        pinned = false;
        // One pin of this address goes; another attempt may hold the same one.
        const left = [...pins.get(key) ?? []];
        left.splice(left.indexOf(address), 1);
        if (left.length === 0) pins.delete(key);
        else pins.set(key, left);
      };
    },
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

/** One spelling per host: lowercase names, IP addresses in their shortest form, no brackets. */
function pinKey(host: string, port: number): string {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return `${ipaddr.isValid(bare) ? ipaddr.parse(bare).toString() : bare}:${port}`;
}

// RFC 1928 (SOCKS5) and RFC 1929 (its user name and password).
const VERSION = 5;
const USER_PASSWORD = 2;
const NO_ACCEPTABLE_METHOD = 0xff;
const CONNECT = 1;
const SUCCEEDED = 0;
const GENERAL_FAILURE = 1;
const NOT_ALLOWED = 2;
const CONNECTION_REFUSED = 5;

/** One SOCKS5 connection: checks the credentials, then joins it to the pinned address. */
async function relay(
  conn: Deno.Conn,
  options: {
    user: string;
    password: string;
    signal: AbortSignal;
    open: Set<Deno.Conn>;
    lookUp(host: string, port: number): string | null;
    proxy: EgressProxy | null;
    onProxyFailure(reason: string): void;
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
  const host = addressType === 3
    ? text(await read((await read(1))[0]!))
    : ipaddr.fromByteArray([...await read(addressType === 4 ? 16 : 4)]).toString();
  const [high, low] = await read(2);
  const port = high! * 256 + low!;
  if (command !== CONNECT) return void await conn.write(reply(GENERAL_FAILURE));
  // Only what an attempt pinned, so that nothing reaches an address the guard did not check.
  const address = options.lookUp(host, port);
  if (address === null) return void await conn.write(reply(NOT_ALLOWED));
  let upstream: Deno.TcpConn;
  try {
    upstream = options.proxy === null
      ? await Deno.connect({ hostname: address, port, signal: options.signal })
      : await connectThrough(options.proxy, { address, port, signal: options.signal });
  } catch (err) {
    if (options.proxy !== null && !options.signal.aborted) {
      options.onProxyFailure(err instanceof Error ? err.message : String(err));
    }
    // A proxy that refuses is not the endpoint refusing.
    const refused = options.proxy === null && err instanceof Deno.errors.ConnectionRefused;
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

/** The longest answer head a proxy may send to a CONNECT. */
const MAX_PROXY_HEAD_BYTES = 8192;

/**
 * A connection to `address:port` through an HTTP proxy (CONNECT to the
 * address, never a name: the proxy resolves nothing). Any answer but 2xx
 * fails it; a proxy that refuses or cannot be reached reads as a general
 * failure, so it is not taken for the endpoint refusing.
 */
async function connectThrough(
  proxy: EgressProxy,
  target: { address: string; port: number; signal: AbortSignal },
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({
    hostname: proxy.hostname,
    port: proxy.port,
    signal: target.signal,
  });
  try {
    const authority = target.address.includes(":")
      ? `[${target.address}]:${target.port}`
      : `${target.address}:${target.port}`;
    const auth = proxy.authorization === null
      ? ""
      : `Proxy-Authorization: ${proxy.authorization}\r\n`;
    await writeAll(conn, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    // Byte by byte: what follows the head is the tunnel's, and the endpoint's to read.
    const read = reader(conn);
    let head = "";
    while (!head.endsWith("\r\n\r\n")) {
      if (head.length >= MAX_PROXY_HEAD_BYTES) throw new Error("The proxy's answer is too long");
      head += String.fromCharCode((await read(1))[0]!);
    }
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
    if (status === undefined || !status.startsWith("2")) {
      throw new Error(`The egress proxy answered CONNECT with ${status ?? "no status"}`);
    }
    return conn;
  } catch (err) {
    closeQuietly(conn);
    throw err;
  }
}

async function writeAll(conn: Deno.Conn, message: string): Promise<void> {
  const bytes = new TextEncoder().encode(message);
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
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
