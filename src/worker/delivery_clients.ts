/**
 * The HTTP clients deliveries are sent with: one per subscription with a
 * client certificate, rebuilt when its certificate changes, and one shared by
 * the rest. Each trusts DELIVERY_CA_FILE's CAs besides the system's and,
 * when the SSRF guard or DELIVERY_PROXY_URL needs it, connects through a
 * pinning tunnel (`security/pinned_client.ts`) that attempts pin their
 * checked address in.
 *
 * @module
 */
import type { ProxySettings } from "../config.ts";
import type { ClaimedDelivery } from "../engine/shapes.ts";
import type { Logger } from "../observability/log.ts";
import { type EgressProxy, pinnedClient } from "../security/pinned_client.ts";
import type { SecretCipher } from "../security/secret_cipher.ts";

/** A client for one attempt; release it once the attempt is over. */
export interface LeasedClient {
  client: Deno.HttpClient;
  pin?: ReturnType<typeof pinnedClient>["pin"];
  release(): void;
}

export interface DeliveryClientOptions {
  /** Root certificates (PEM) trusted besides the system's. */
  caCerts: string[];
  proxy: ProxySettings | null;
  /** The SSRF guard checks targets: connections go to the address it checked. */
  pinned: boolean;
  /**
   * A subscription's client unused this long is closed (its certificate was
   * removed, or the subscription deleted); default 10 minutes.
   */
  idleMs?: number;
  /** Monotonic clock in milliseconds; default `performance.now`. */
  now?: () => number;
}

export interface DeliveryClients {
  /**
   * The client for an attempt of `d`; undefined when fetch's own will do (no
   * certificate, CA, proxy or guard). Rejects when a sealed key cannot be opened.
   */
  lease(d: Pick<ClaimedDelivery, "subscription_id" | "tls_client_certificate">): Promise<
    LeasedClient | undefined
  >;
  /** Closes every client; leases still out are cut off. */
  close(): Promise<void>;
}

interface Entry {
  fingerprint: string;
  built: Promise<
    { client: Deno.HttpClient; pin: LeasedClient["pin"] | undefined; close(): Promise<void> }
  >;
  users: number;
  /** Replaced by a newer certificate: closed once its last user is done. */
  retired: boolean;
  lastUsed: number;
}

/** The cache of delivery clients of one worker. */
export function deliveryClients(
  deps: { secrets: SecretCipher; log: Logger },
  options: DeliveryClientOptions,
): DeliveryClients {
  const proxy = options.proxy && egressProxy(options.proxy);
  const tunnel = options.pinned || proxy !== null;
  const entries = new Map<string, Entry>();
  const onProxyFailure = (reason: string) =>
    deps.log.warn("The egress proxy failed a delivery's connection", {
      proxy: `${options.proxy?.hostname}:${options.proxy?.port}`,
      reason,
    });
  const closing = new Set<Promise<void>>();
  const { idleMs = 600_000, now = () => performance.now() } = options;
  let sweptAt = now();

  /** Closes the clients of subscriptions that sent nothing for `idleMs`, at most once per `idleMs`. */
  function sweep() {
    if (now() - sweptAt < idleMs) return;
    sweptAt = now();
    for (const [key, entry] of entries) {
      // One still in use is closed when its attempt ends (see retire).
      if (key === "" || sweptAt - entry.lastUsed < idleMs) continue;
      entries.delete(key);
      retire(entry);
    }
  }

  function build(tls: { cert: string; key: string } | null) {
    const settings = {
      ...(options.caCerts.length > 0 ? { caCerts: options.caCerts } : {}),
      ...tls,
    };
    if (tunnel) return pinnedClient({ ...settings, proxy, onProxyFailure });
    const client = Deno.createHttpClient(settings);
    return { client, pin: undefined, close: () => Promise.resolve(client.close()) };
  }

  function retire(entry: Entry) {
    entry.retired = true;
    if (entry.users > 0) return;
    const closed = entry.built.then((b) => b.close(), () => {});
    closing.add(closed);
    closed.finally(() => closing.delete(closed));
  }

  return {
    async lease(d) {
      sweep();
      const tls = d.tls_client_certificate;
      if (tls === null && !tunnel && options.caCerts.length === 0) return undefined;
      // One entry per subscription with a certificate; the rest share one.
      const key = tls === null ? "" : `sub:${d.subscription_id}`;
      const fingerprint = tls?.fingerprint ?? "";
      let entry = entries.get(key);
      if (entry?.fingerprint !== fingerprint) {
        if (entry !== undefined) retire(entry);
        const built = tls === null
          ? Promise.resolve(build(null))
          : deps.secrets.open(tls.key).then((key) => build({ cert: tls.cert, key }));
        entry = { fingerprint, built, users: 0, retired: false, lastUsed: now() };
        entries.set(key, entry);
        // A key that cannot be opened fails this attempt; the next one tries again.
        built.catch(() => entries.get(key) === entry && entries.delete(key));
      }
      const current = entry;
      current.users++;
      current.lastUsed = now();
      let built;
      try {
        built = await current.built;
      } catch (err) {
        current.users--;
        throw err;
      }
      let released = false;
      return {
        client: built.client,
        ...(built.pin === undefined ? {} : { pin: built.pin }),
        release() {
          if (released) return;
          released = true;
          current.users--;
          if (current.retired) retire(current);
        },
      };
    },
    async close() {
      for (const entry of entries.values()) {
        entry.users = 0;
        retire(entry);
      }
      entries.clear();
      await Promise.allSettled([...closing]);
    },
  };
}

/** The proxy as the tunnel speaks to it: its credentials as a Basic `Proxy-Authorization`. */
function egressProxy(proxy: ProxySettings): EgressProxy {
  const { hostname, port, username, password } = proxy;
  const credentials = username === null && password === null
    ? null
    : new TextEncoder().encode(`${username ?? ""}:${password ?? ""}`).toBase64();
  return { hostname, port, authorization: credentials && `Basic ${credentials}` };
}
