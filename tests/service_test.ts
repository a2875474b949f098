import assert from "node:assert/strict";
import { createLogger } from "../src/observability/log.ts";
import type { Role } from "../src/service.ts";
import { testDatabase } from "./helpers/db.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { eventually, startTestService } from "./helpers/service.ts";

const events = 20;

/** Runs one service per role on a fresh schema, ingests through the first, and reports what arrived. */
async function deliverWith(roles: Role[]) {
  const db = await testDatabase();
  const receiver = startReceiver();
  const services = [];
  try {
    for (const role of roles) services.push(await startTestService(db, { role }));
    const { api } = services[0]!;
    for (const s of ["a", "b"]) {
      await api("POST", "/subscriptions", { id: `sub_${s}`, url: `${receiver.url}?s=${s}` });
    }
    for (let i = 0; i < events; i++) {
      await api("POST", "/events", { id: `evt_${i}`, type: "order.created", data: { i } });
    }
    await receiver.waitFor(events * 2);
    const finished = await eventually(async () => {
      const page = await api("GET", "/events?limit=100");
      // deno-lint-ignore no-explicit-any -- JSON from the API
      const statuses = page.data.map((e: any) => e.status);
      return statuses.every((s: string) => s === "delivered") ? statuses.length : undefined;
    }, { what: "every event to be delivered" });
    const received = receiver.received.map((r) => {
      const body = JSON.parse(r.body);
      return `${r.headers.get("x-dispatch-subscription-id")} ${body.id} ${
        JSON.stringify(body.data)
      }`;
    }).sort();
    const scrapes = await Promise.all(services.map(async (s) => {
      const res = await fetch(`${s.url}/metrics`);
      return await res.text();
    }));
    return { finished, received, scrapes };
  } finally {
    for (const s of services) await s.stop();
    await receiver.close();
    await db.close();
  }
}

Deno.test("the api and worker roles together deliver what serve delivers alone", async () => {
  const serve = await deliverWith(["serve"]);
  const split = await deliverWith(["api", "worker"]);
  assert.equal(serve.received.length, events * 2);
  assert.equal(serve.finished, events);
  assert.deepEqual(split.received, serve.received);
  assert.equal(split.finished, events);

  const [apiMetrics, workerMetrics] = split.scrapes;
  // The API ingests and has no worker: its delivery metrics stay at zero.
  assert.match(apiMetrics!, /^dispatch_events_ingested_total\{type="order\.created"\} 20$/m);
  assert.doesNotMatch(apiMetrics!, /^dispatch_delivery_attempts_total\{/m);
  assert.match(apiMetrics!, /^dispatch_deliveries_in_flight 0$/m);
  // The worker's listener serves its metrics.
  assert.match(workerMetrics!, /^dispatch_delivery_attempts_total\{result="success"\} 40$/m);
  assert.match(workerMetrics!, /^dispatch_deliveries_finished_total\{outcome="delivered"\} 40$/m);
  assert.doesNotMatch(workerMetrics!, /^dispatch_events_ingested_total\{/m);
});

Deno.test("the worker role listens only for probes and metrics", async () => {
  const db = await testDatabase();
  const worker = await startTestService(db, { role: "worker" });
  try {
    const status = async (path: string) => {
      const res = await fetch(`${worker.url}${path}`);
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await status("/healthz"), 200);
    assert.equal(await status("/readyz"), 200);
    assert.equal(await status("/metrics"), 200);
    assert.equal(await status("/events"), 404);
    assert.equal(await status("/openapi.json"), 404);
  } finally {
    await worker.stop();
    await db.close();
  }
});

Deno.test("a start that cannot bind ADDR starts no worker and leaves nothing running", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    // A due delivery that a started worker would send at once.
    const [sub] = await db.sql<{ seq: number }[]>`
      INSERT INTO subscriptions (id, url, event_types, secret)
      VALUES ('s', ${receiver.url}, '{*}', 'a-secret') RETURNING seq`;
    await db.sql`INSERT INTO events (id, type, data) VALUES ('e1', 'a', '{}')`;
    await db.sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq)
      VALUES ('e1', 's', ${sub!.seq})`;
    await assert.rejects(startTestService(db, { env: { ADDR: `127.0.0.1:${taken.addr.port}` } }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.received.length, 0);
    const [d] = await db.sql`SELECT status, attempts FROM deliveries`;
    assert.deepEqual([d!.status, d!.attempts], ["pending", 0]);
  } finally {
    taken.close();
    await receiver.close();
    await db.close();
  }
});

Deno.test("production without DISPATCH_SECRETS_KEY starts with a warning, and with one without it", async () => {
  const db = await testDatabase();
  try {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    for (const secretsKey of [undefined, key]) {
      const lines: { level: string; msg: string }[] = [];
      const svc = await startTestService(db, {
        env: {
          DISPATCH_ENV: "production",
          DISPATCH_API_KEYS: "a-production-api-key-0123456789",
          ...(secretsKey ? { DISPATCH_SECRETS_KEY: secretsKey } : {}),
        },
        log: createLogger({ write: (l) => lines.push(JSON.parse(l)) }),
      });
      await svc.stop();
      const warned = lines.some((l) => l.level === "warn" && /DISPATCH_SECRETS_KEY/.test(l.msg));
      assert.equal(warned, secretsKey === undefined, `key ${secretsKey ? "set" : "unset"}`);
    }
  } finally {
    await db.close();
  }
});
