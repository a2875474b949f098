import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { startService } from "../../src/service.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { type Api, apiClient, overHttp } from "../helpers/http.ts";
import { eventually, fastEnv } from "../helpers/service.ts";

/**
 * Dispatch on the embedded database (no DATABASE_URL), which cannot LISTEN,
 * polling only once a minute: whatever wakes a worker here is the engine's
 * in-process wake-up. The receiver holds its first request until the test
 * lets it go, so one delivery stays in flight throughout.
 */
async function withEmbeddedService(
  test: (ctx: {
    api: Api;
    service: Awaited<ReturnType<typeof startService>>;
    receiver: ReturnType<typeof startReceiver>;
  }) => Promise<void>,
) {
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-wake-" });
  const first = Promise.withResolvers<void>();
  const receiver = startReceiver(async (_req, index) => {
    if (index === 0) await first.promise;
    return new Response("ok");
  });
  const config = loadConfig({
    ...fastEnv,
    DISPATCH_DATA_DIR: dataDir,
    ADDR: "127.0.0.1:0",
    POLL_INTERVAL_MS: "60000",
    // The held first request must not end by timing out: its end would wake the worker too.
    DELIVERY_TIMEOUT_MS: "60000",
  });
  const service = await startService(config, { role: "serve", log: silentLogger });
  try {
    assert.equal(service.db.kind, "embedded");
    await test({
      service,
      receiver,
      api: apiClient(overHttp(service.url)),
    });
  } finally {
    first.resolve();
    await service.stop();
    await receiver.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** Waits until the event's delivery is held back by `reason`. */
// deno-lint-ignore no-explicit-any -- JSON from the API
async function heldBy(api: (m: string, p: string) => Promise<any>, id: string, reason: string) {
  await eventually(async () => {
    const { data } = await api("GET", `/events/${id}/deliveries`);
    return data[0]?.held_by === reason ? true : undefined;
  }, { what: `the delivery of ${id} to be held by ${reason}` });
}

Deno.test("on the embedded database a delivery released by PATCH (limit raised) is sent at once, not at the next poll", () =>
  withEmbeddedService(async ({ api, receiver }) => {
    await api("POST", "/subscriptions", { id: "s", url: receiver.url, max_in_flight: 1 });
    await api("POST", "/events", { id: "e1", type: "a", data: {} });
    await receiver.waitFor(1);
    await api("POST", "/events", { id: "e2", type: "a", data: {} });
    await heldBy(api, "e2", "max_in_flight");
    await api("PATCH", "/subscriptions/s", { max_in_flight: 2 });
    // e1 is still held by the receiver: only the PATCH's wake-up can send e2 before the poll.
    const [, second] = await receiver.waitFor(2, 20_000);
    assert.equal(JSON.parse(second!.body).id, "e2");
  }));

Deno.test("on the embedded database a delivery released by PATCH (circuit reset) is sent at once, not at the next poll", () =>
  withEmbeddedService(async ({ api, service, receiver }) => {
    await api("POST", "/subscriptions", { id: "s", url: receiver.url });
    await api("POST", "/events", { id: "e1", type: "a", data: {} });
    await receiver.waitFor(1);
    // The circuit is open for an hour, as a burst of failures leaves it.
    await service.db.sql`UPDATE subscriptions SET circuit_state = 'open',
      circuit_opened_at = now(), circuit_next_probe_at = now() + interval '1 hour'`;
    await api("POST", "/events", { id: "e2", type: "a", data: {} });
    await heldBy(api, "e2", "circuit");
    await api("PATCH", "/subscriptions/s", { active: true });
    const [, second] = await receiver.waitFor(2, 20_000);
    assert.equal(JSON.parse(second!.body).id, "e2");
  }));
