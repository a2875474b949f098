import assert from "node:assert/strict";
import { testDatabase } from "../helpers/db.ts";
import { type DispatchProcess, spawnDispatch } from "../helpers/process.ts";
import { startReceiver } from "../helpers/receiver.ts";

async function twoProcesses(
  test: (p: [DispatchProcess, DispatchProcess]) => Promise<void>,
  env: Record<string, string> = {},
) {
  const db = await testDatabase();
  const procs: DispatchProcess[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      procs.push(await spawnDispatch(db, { env: { WORKER_CONCURRENCY: "8", ...env } }));
    }
    await test(procs as [DispatchProcess, DispatchProcess]);
    for (const p of procs) p.child.kill("SIGTERM");
    for (const p of procs) assert.equal(await p.exited, 0);
    // Both processes delivered, or this proved nothing about sharing a limit.
    for (const p of procs) assert.ok(p.logs.some((l) => l.msg === "Delivery attempt"));
  } finally {
    for (const p of procs) {
      try {
        p.child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    await Promise.allSettled(procs.map((p) => p.exited));
    await db.close();
  }
}

const batches = (type: string, n: number) =>
  Array.from({ length: Math.ceil(n / 100) }, (_, b) => ({
    events: Array.from({ length: Math.min(100, n - b * 100) }, (_, i) => ({
      id: `${type}_${b * 100 + i}`,
      type,
      data: {},
    })),
  }));

Deno.test("two processes keep rate_limit 10 paced: 200 deliveries take 18 s or more, and no one-second window sees a burst", async () => {
  const receiver = startReceiver();
  try {
    await twoProcesses(async ([a, b]) => {
      await a.api("POST", "/subscriptions", {
        url: receiver.url,
        event_types: ["paced"],
        rate_limit: 10,
      });
      for (const batch of batches("paced", 200)) await b.api("POST", "/events/batch", batch);
      await receiver.waitFor(200, 40_000);
      const at = receiver.received.map((r) => r.at).sort((x, y) => x - y);
      let most = 0;
      for (let i = 0, j = 0; i < at.length; i++) {
        while (at[i]! - at[j]! >= 1000) j++;
        most = Math.max(most, i - j + 1);
      }
      const took = (at.at(-1)! - at[0]!) / 1000;
      console.log(
        JSON.stringify({ rate_limit: 10, deliveries: 200, most_in_a_second: most, took_s: took }),
      );
      // Slots are 100 ms apart; a loaded machine can make a few arrive late and bunch with the
      // next second's (12 seen under load). A burst, a second process pacing on its own, or slots
      // sent early would put 20 or more in one second.
      assert.ok(most <= 15, `${most} deliveries in one second`);
      assert.ok(took >= 18, `took only ${took} s`);
      const attempts = receiver.received.map((r) => r.headers.get("x-dispatch-attempt"));
      assert.ok(attempts.every((n) => n === "1"), "waiting spent an attempt");
      // A poll of a second: slots are claimed up to a second ahead and each sent at its time.
    }, { POLL_INTERVAL_MS: "1000" });
  } finally {
    await receiver.close();
  }
});

Deno.test("two processes keep max_in_flight 2: the receiver never has 3 requests open, and an unlimited subscription flows meanwhile", async () => {
  let open = 0;
  let most = 0;
  const limited = startReceiver(async () => {
    most = Math.max(most, ++open);
    await new Promise((r) => setTimeout(r, 100));
    open--;
    return new Response("ok");
  });
  const free = startReceiver();
  try {
    await twoProcesses(async ([a, b]) => {
      await a.api("POST", "/subscriptions", {
        url: limited.url,
        event_types: ["job"],
        max_in_flight: 2,
      });
      await a.api("POST", "/subscriptions", { url: free.url, event_types: ["job"] });
      const start = performance.now();
      for (const batch of batches("job", 40)) await b.api("POST", "/events/batch", batch);
      await free.waitFor(40, 10_000);
      const freeMs = performance.now() - start;
      await limited.waitFor(40, 30_000);
      const limitedMs = performance.now() - start;
      console.log(
        JSON.stringify({
          max_in_flight: 2,
          most_open: most,
          unlimited_ms: Math.round(freeMs),
          limited_ms: Math.round(limitedMs),
        }),
      );
      assert.ok(most <= 2, `${most} requests open at once`);
      assert.equal(most, 2, "the limit was reached, or this proved nothing");
      // 40 held 100 ms each, two at a time: the unlimited one is done well before.
      assert.ok(freeMs < limitedMs / 2, `unlimited ${freeMs} ms, limited ${limitedMs} ms`);
    });
  } finally {
    await limited.close();
    await free.close();
  }
});
