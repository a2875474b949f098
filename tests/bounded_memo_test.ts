import assert from "node:assert/strict";
import { boundedMemo } from "../src/bounded_memo.ts";

Deno.test("boundedMemo() makes each key once, shared by concurrent first uses", async () => {
  const made: string[] = [];
  const memo = boundedMemo(10, (k) => {
    made.push(k);
    return Promise.resolve(k.toUpperCase());
  });
  assert.deepEqual(await Promise.all([memo("a"), memo("a"), memo("b")]), ["A", "A", "B"]);
  assert.equal(await memo("a"), "A");
  assert.deepEqual(made, ["a", "b"]);
});

Deno.test("boundedMemo() forgets the oldest key past its limit", async () => {
  const made: string[] = [];
  const memo = boundedMemo(2, (k) => {
    made.push(k);
    return Promise.resolve(k);
  });
  await memo("a");
  await memo("b");
  await memo("c"); // evicts "a"
  await memo("b");
  await memo("a");
  assert.deepEqual(made, ["a", "b", "c", "a"]);
});

Deno.test("boundedMemo() forgets a rejected result, so the next use tries again", async () => {
  let calls = 0;
  const memo = boundedMemo(10, () => {
    calls++;
    return calls === 1 ? Promise.reject(new Error("first fails")) : Promise.resolve("ok");
  });
  await assert.rejects(memo("k"), { message: "first fails" });
  assert.equal(await memo("k"), "ok");
  assert.equal(calls, 2);
});
