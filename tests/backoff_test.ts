import assert from "node:assert/strict";
import { backoffMs } from "../src/backoff.ts";

Deno.test("backoffMs() doubles from baseMs up to maxMs by default, and grows by baseMs when linear", () => {
  const exponential = [1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, { baseMs: 50, maxMs: 1000 }));
  assert.deepEqual(exponential, [50, 100, 200, 400, 800, 1000]);
  const linear = [1, 2, 3, 30].map((n) =>
    backoffMs(n, { baseMs: 250, maxMs: 5000, growth: "linear" })
  );
  assert.deepEqual(linear, [250, 500, 750, 5000]);
  assert.equal(backoffMs(5000, { baseMs: 1, maxMs: 7 }), 7, "a huge count stays at the cap");
});

Deno.test("backoffMs() takes a random part of the delay with full jitter, half or more with half", () => {
  const options = { baseMs: 100, maxMs: 10_000 };
  assert.equal(backoffMs(3, { ...options, jitter: "full", random: () => 0.5 }), 200);
  assert.equal(backoffMs(3, { ...options, jitter: "full", random: () => 0 }), 0);
  assert.equal(backoffMs(3, { ...options, jitter: "half", random: () => 0 }), 200);
  assert.equal(backoffMs(3, { ...options, jitter: "half", random: () => 0.5 }), 300);
});
