/**
 * The bare minimum of Dispatch's work, for `deno task bench --bare`: what
 * delivering a webhook costs at the least, so Dispatch's CPU per delivery
 * can be put beside it in the same run. Not the product: no auth, no
 * validation past the id and type, no retries, no metrics, no logs.
 *
 * `Deno.serve` takes a JSON POST of an event and inserts it with its
 * deliveries (one per subscription) in one statement; a loop claims a batch
 * of due deliveries in one statement, sends each with a Standard Webhooks
 * signature by `fetch`, and marks the batch done in one statement.
 *
 * Run as a process of its own (`startBare()`), so /proc counts its CPU apart.
 *
 * @module
 */
import { connect } from "../../src/db/pool.ts";
import {
  prototypeEnv,
  type PrototypeOptions,
  startPrototype,
  type Webhook,
  webhookSender,
} from "./prototype.ts";

/** Starts the bare prototype as a child process, serving on `options.addr`. */
export function startBare(options: PrototypeOptions): Deno.ChildProcess {
  return startPrototype(import.meta.url, options);
}

if (import.meta.main) await serve();

async function serve() {
  const { url, schema, addr, hook, subs, concurrency: batch } = prototypeEnv();
  const sql = connect(url, { max: 16, schema, applicationName: "bare" });

  await sql.unsafe(`
    DROP TABLE IF EXISTS bare_deliveries, bare_events;
    CREATE TABLE bare_events (
      id text PRIMARY KEY, type text NOT NULL, data jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE bare_deliveries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      event_id text NOT NULL REFERENCES bare_events, subscription_id text NOT NULL,
      status smallint NOT NULL DEFAULT 0, attempts int NOT NULL DEFAULT 0,
      finished_at timestamptz);
    CREATE INDEX bare_due ON bare_deliveries (id) WHERE status = 0;`);
  const send = await webhookSender(hook);

  // An idle loop waits for the next insert, or 100 ms.
  const waiting = new Set<() => void>();
  const wake = () => {
    for (const resolve of waiting) resolve();
    waiting.clear();
  };
  const due = () =>
    new Promise<void>((resolve) => {
      waiting.add(resolve);
      setTimeout(wake, 100);
    });

  const [host, port] = addr.split(":");
  Deno.serve({ hostname: host!, port: Number(port), onListen() {} }, async (req) => {
    if (req.method === "GET") return new Response("ok");
    const e = await req.json() as { id: string; type: string; data?: unknown };
    if (typeof e.id !== "string" || typeof e.type !== "string") {
      return new Response(null, { status: 422 });
    }
    const inserted = await sql`
      WITH e AS (
        INSERT INTO bare_events (id, type, data)
        VALUES (${e.id}, ${e.type}, ${JSON.stringify(e.data ?? null)}::text::jsonb)
        ON CONFLICT (id) DO NOTHING RETURNING id)
      INSERT INTO bare_deliveries (event_id, subscription_id)
      SELECT e.id, s FROM e, unnest(${subs}::text[]) s`;
    wake();
    return Response.json({ id: e.id }, { status: inserted.count > 0 ? 201 : 200 });
  });

  // Two loops, so one claims or completes while the other's batch is on the wire.
  const loop = async () => {
    while (true) {
      const claimed = await sql<(Webhook & { id: number })[]>`
        UPDATE bare_deliveries d SET status = 1, attempts = attempts + 1
        FROM (SELECT id FROM bare_deliveries WHERE status = 0 ORDER BY id
              LIMIT ${Math.ceil(batch / 2)} FOR UPDATE SKIP LOCKED) c, bare_events e
        WHERE d.id = c.id AND e.id = d.event_id
        RETURNING d.id, d.event_id AS "eventId", d.subscription_id AS "subscriptionId", e.type,
          e.data::text AS data`;
      if (claimed.length === 0) {
        await due();
        continue;
      }
      await Promise.all(claimed.map((d) => send(d).catch(() => {})));
      await sql`UPDATE bare_deliveries SET status = 2, finished_at = now()
        WHERE id = ANY(${claimed.map((d) => d.id)}::bigint[])`;
    }
  };
  await Promise.all([loop(), loop()]);
}
