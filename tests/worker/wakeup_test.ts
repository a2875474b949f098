import assert from "node:assert/strict";
import { Wakeup } from "../../src/worker/wakeup.ts";

/** Whether `promise` settles before `ms` pass. */
async function settlesBefore(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Wakeup remembers a notify that lands while nobody waits", async () => {
  const w = new Wakeup();
  // Between "claimed nothing" and "wait": the worker must not sleep through it.
  w.notify();
  assert.ok(await settlesBefore(w.wait(60_000), 2_000), "the remembered notify was lost");
});

Deno.test("Wakeup ends a wait when notified, and a remembered notify counts once", async () => {
  const w = new Wakeup();
  const waiting = w.wait(60_000);
  w.notify();
  assert.ok(await settlesBefore(waiting, 2_000));
  // That notify was spent on the wait it ended.
  assert.equal(await settlesBefore(w.wait(60_000), 100), false);
});

Deno.test("Wakeup.wait ends after its time without a notify", async () => {
  const w = new Wakeup();
  const start = performance.now();
  await w.wait(30);
  assert.ok(performance.now() - start >= 25);
});
