import assert from "node:assert/strict";
import { type TestDatabase, testDatabase } from "../helpers/db.ts";
import { type DispatchProcess, spawnDispatch } from "../helpers/process.ts";
import { type Receiver, startReceiver } from "../helpers/receiver.ts";
import { eventually } from "../helpers/service.ts";

/**
 * A Dispatch process with one delivery in flight: the receiver holds its
 * first request until `release()`, and answers later ones at once.
 */
async function withDeliveryInFlight(
  env: Record<string, string>,
  test: (
    t: { db: TestDatabase; p: DispatchProcess; release: () => void; receiver: Receiver },
  ) => Promise<void>,
) {
  const db = await testDatabase();
  const held = Promise.withResolvers<void>();
  const receiver = startReceiver(async (_r, i) => {
    if (i === 0) await held.promise;
    return new Response("ok");
  });
  try {
    const p = await spawnDispatch(db, { env });
    await p.api("POST", "/subscriptions", { url: receiver.url });
    await p.api("POST", "/events", { id: "evt_in_flight", type: "a", data: {} });
    await receiver.waitFor(1);
    await test({ db, p, release: () => held.resolve(), receiver });
  } finally {
    held.resolve();
    await receiver.close();
    await db.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once the process has taken the signal and waits for its delivery in flight. */
const draining = (p: DispatchProcess) =>
  eventually(
    () =>
      Promise.resolve(p.logs.some((l) => l.msg === "Draining in-flight deliveries") || undefined),
    { what: "the drain to begin" },
  );

Deno.test("SIGTERM mid-delivery lets the delivery finish, then the process exits 0", async () => {
  await withDeliveryInFlight({ SHUTDOWN_TIMEOUT_MS: "5000" }, async ({ db, p, release }) => {
    p.child.kill("SIGTERM");
    await draining(p);
    release();
    assert.equal(await p.exited, 0);
    const [d] = await db.sql`SELECT status, attempts FROM deliveries`;
    assert.equal(d!.status, "delivered");
    assert.equal(d!.attempts, 1);
    assert.ok(p.logs.some((l) => l.msg === "Draining in-flight deliveries"));
    assert.ok(p.logs.some((l) => l.msg === "Stopped"));
  });
});

Deno.test("SIGTERM records and counts an attempt that the drain timeout cuts off, and the next worker sends the next attempt", async () => {
  const env = { SHUTDOWN_TIMEOUT_MS: "300" };
  await withDeliveryInFlight(env, async ({ db, p, receiver }) => {
    p.child.kill("SIGTERM");
    assert.equal(await p.exited, 0);
    const [d] = await db.sql`SELECT status, attempts, locked_by FROM deliveries`;
    // The endpoint got the request, so the attempt happened: counted, and retried as attempt 2.
    assert.deepEqual([d!.status, d!.attempts, d!.locked_by], ["retrying", 1, null]);
    const attempts = await db.sql`SELECT attempt, error_class FROM delivery_attempts`;
    assert.deepEqual(attempts.map((a) => [a.attempt, a.error_class]), [[1, "aborted"]]);
    assert.ok(
      p.logs.some((l) => l.msg === "Aborting deliveries still in flight after the drain timeout"),
    );
    const next = await spawnDispatch(db, { env });
    const [, second] = await receiver.waitFor(2);
    assert.equal(second!.headers.get("x-dispatch-attempt"), "2");
    next.child.kill("SIGTERM");
    assert.equal(await next.exited, 0);
  });
});

Deno.test("a process killed with SIGKILL mid-delivery loses nothing: after a restart the delivery ends delivered", async () => {
  const env = { DELIVERY_TIMEOUT_MS: "1000" };
  await withDeliveryInFlight(env, async ({ db, p, release }) => {
    p.child.kill("SIGKILL");
    await p.exited;
    release();
    const [stuck] = await db.sql`SELECT status FROM deliveries`;
    assert.equal(stuck!.status, "processing");

    const second = await spawnDispatch(db, { env });
    let d;
    for (let i = 0; i < 400; i++) {
      [d] = await db.sql`SELECT status, attempts FROM deliveries`;
      if (d!.status === "delivered") break;
      await sleep(50);
    }
    assert.equal(d!.status, "delivered");
    const attempts = await db.sql`
      SELECT attempt, error_class FROM delivery_attempts ORDER BY id`;
    assert.deepEqual(attempts.map((a) => [a.attempt, a.error_class]), [
      [1, "lease_expired"],
      [2, null],
    ]);
    second.child.kill("SIGTERM");
    assert.equal(await second.exited, 0);
  });
});

Deno.test("a second signal during a long drain exits at once with code 1", async () => {
  await withDeliveryInFlight({ SHUTDOWN_TIMEOUT_MS: "60000" }, async ({ p }) => {
    p.child.kill("SIGTERM");
    await draining(p);
    p.child.kill("SIGINT");
    assert.equal(await p.exited, 1);
    assert.ok(p.logs.some((l) => l.msg === "Second signal: exiting now"));
  });
});

Deno.test("a bad configuration stops start-up with one line naming the variable", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("../../main.ts", import.meta.url).pathname],
    env: { WORKER_CONCURRENCY: "lots" },
    stdin: "null",
  }).output();
  assert.equal(out.code, 2);
  const err = new TextDecoder().decode(out.stderr).trim();
  assert.match(err, /^Invalid WORKER_CONCURRENCY "lots": expected a whole number/);
});
