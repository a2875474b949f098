/**
 * What the bench's stand-ins for Dispatch share (the bare minimum, bare.ts,
 * and the graphile-worker peer, peer.ts): how one is started as a process of
 * its own, so /proc counts its CPU apart, and the signed webhook each sends,
 * as Dispatch sends it, to the bench's receiver.
 *
 * @module
 */

export interface PrototypeOptions {
  url: string;
  /** The bench's schema, which the prototype's tables go in. */
  schema: string;
  addr: string;
  /** The receiver's base URL: subscription `sub_0_<i>` posts to `<hook>0_<i>`. */
  hook: string;
  subs: number;
  concurrency: number;
  denoFlags: string[];
}

/** Starts `script` (a module's URL) as a child process serving on `options.addr`. */
export function startPrototype(
  script: string,
  options: PrototypeOptions,
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ...options.denoFlags, new URL(script).pathname],
    env: {
      DATABASE_URL: options.url,
      DATABASE_SCHEMA: options.schema,
      ADDR: options.addr,
      PROTOTYPE_HOOK: options.hook,
      PROTOTYPE_SUBS: String(options.subs),
      WORKER_CONCURRENCY: String(options.concurrency),
      ...env,
    },
    stdin: "null",
    stdout: "null",
  }).spawn();
}

/** A prototype's settings, read in its own process from what `startPrototype()` set. */
export function prototypeEnv() {
  const env = (name: string) => Deno.env.get(name)!;
  return {
    url: env("DATABASE_URL"),
    schema: env("DATABASE_SCHEMA"),
    addr: env("ADDR"),
    hook: env("PROTOTYPE_HOOK"),
    subs: Array.from({ length: Number(env("PROTOTYPE_SUBS")) }, (_, i) => `sub_0_${i + 1}`),
    concurrency: Number(env("WORKER_CONCURRENCY")),
  };
}

export interface Webhook {
  eventId: string;
  subscriptionId: string;
  type: string;
  /** The event's data as JSON text. */
  data: string;
}

/**
 * A sender of webhooks to `hook` with a Standard Webhooks signature
 * (HMAC-SHA256 of id, timestamp and body, by Web Crypto), over keep-alive
 * `fetch`; it answers the receiver's status.
 */
export async function webhookSender(
  hook: string,
): Promise<(webhook: Webhook, signal?: AbortSignal) => Promise<number>> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode("bench-secret"),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return async (w, signal) => {
    const timestamp = Math.floor(Date.now() / 1000);
    const body = `{"type":${JSON.stringify(w.type)},"timestamp":"${
      new Date(timestamp * 1000).toISOString()
    }","data":${w.data}}`;
    const mac = await crypto.subtle.sign(
      "HMAC",
      key,
      new TextEncoder().encode(`${w.eventId}.${timestamp}.${body}`),
    );
    const res = await fetch(`${hook}${w.subscriptionId.slice("sub_".length)}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "webhook-id": w.eventId,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": `v1,${new Uint8Array(mac).toBase64()}`,
        "x-dispatch-subscription-id": w.subscriptionId,
      },
      body,
      ...(signal ? { signal } : {}),
    });
    await res.body?.cancel();
    return res.status;
  };
}
