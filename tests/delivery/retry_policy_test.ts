import assert from "node:assert/strict";
import { retryDelayMs } from "../../src/delivery/retry_policy.ts";

const almostOne = () => 1 - Number.EPSILON;
const zero = () => 0;

Deno.test("retryDelayMs() is 0 when random() returns 0", () => {
  for (const attempt of [1, 2, 10]) {
    assert.equal(retryDelayMs(attempt, { baseMs: 1_000, maxMs: 60_000, random: zero }), 0);
  }
});

Deno.test("retryDelayMs() stays just below a cap that doubles with each attempt", () => {
  const options = { baseMs: 1_000, maxMs: 3_600_000, random: almostOne };

  assert.equal(retryDelayMs(1, options), 999);
  assert.equal(retryDelayMs(2, options), 1_999);
  assert.equal(retryDelayMs(3, options), 3_999);
  assert.equal(retryDelayMs(5, options), 15_999);
});

Deno.test("retryDelayMs() scales random() across the cap", () => {
  assert.equal(retryDelayMs(3, { baseMs: 1_000, maxMs: 60_000, random: () => 0.5 }), 2_000);
});

Deno.test("retryDelayMs() never exceeds maxMs", () => {
  const options = { baseMs: 1_000, maxMs: 10_000, random: almostOne };

  assert.equal(retryDelayMs(4, options), 7_999);
  assert.equal(retryDelayMs(5, options), 9_999);
  assert.equal(retryDelayMs(20, options), 9_999);
});

Deno.test("retryDelayMs() defaults to Math.random within bounds", () => {
  for (let i = 0; i < 100; i++) {
    const delay = retryDelayMs(3, { baseMs: 100, maxMs: 60_000 });
    assert.ok(Number.isInteger(delay) && delay >= 0 && delay < 400, `Got ${delay}`);
  }
});

Deno.test("retryDelayMs() waits at least as long as Retry-After asks", () => {
  const options = { baseMs: 1_000, maxMs: 60_000, retryAfterMs: 7_000 };

  assert.equal(retryDelayMs(1, { ...options, random: zero }), 7_000);
  // A longer backoff than Retry-After asks for is kept.
  assert.equal(retryDelayMs(5, { ...options, random: almostOne }), 15_999);
});

Deno.test("retryDelayMs() clamps Retry-After to maxMs", () => {
  const delay = retryDelayMs(1, { baseMs: 1_000, maxMs: 60_000, retryAfterMs: 86_400_000 });

  assert.equal(delay, 60_000);
});

Deno.test("retryDelayMs() ignores a null Retry-After", () => {
  const options = { baseMs: 1_000, maxMs: 60_000, retryAfterMs: null, random: zero };

  assert.equal(retryDelayMs(1, options), 0);
});

Deno.test("retryDelayMs() stays finite for huge attempt numbers", () => {
  for (const attempt of [1_024, 1_025, 100_000, Number.MAX_SAFE_INTEGER]) {
    assert.equal(
      retryDelayMs(attempt, { baseMs: 1_000, maxMs: 60_000, random: almostOne }),
      59_999,
    );
    assert.equal(retryDelayMs(attempt, { baseMs: 0, maxMs: 60_000, random: almostOne }), 0);
  }
});

Deno.test("retryDelayMs() rejects attempts that are not positive integers", () => {
  const options = { baseMs: 1_000, maxMs: 60_000 };

  for (const attempt of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => retryDelayMs(attempt, options), {
      name: "RangeError",
      message: `Expected attempt to be a positive integer, got ${attempt}`,
    });
  }
});

Deno.test("retryDelayMs() rejects a negative or non-finite baseMs or maxMs", () => {
  assert.throws(() => retryDelayMs(1, { baseMs: -1, maxMs: 60_000 }), {
    message: "Expected baseMs to be a finite number >= 0, got -1",
  });
  assert.throws(() => retryDelayMs(1, { baseMs: 1_000, maxMs: Number.POSITIVE_INFINITY }), {
    message: "Expected maxMs to be a finite number >= 0, got Infinity",
  });
});
