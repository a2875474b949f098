import assert from "node:assert/strict";
import { GroupCommit, QueueClosedError, QueueFullError } from "../../src/engine/group_commit.ts";
import type { EventInput } from "../../src/engine/publish.ts";
import { countRows, testDatabase } from "../helpers/db.ts";

/** An error as postgres.js reports one, with its SQLSTATE or connection code. */
function pgError(code: string, message = `failed with ${code}`) {
  return Object.assign(new Error(message), { code });
}

/**
 * A write function that records every batch it is given and holds each
 * write until the test lets it go, so batches form deterministically.
 */
function heldWrites(fail: (items: number[]) => unknown = () => null) {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const write = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    const err = fail(items);
    if (err) throw err;
    return items.map((i) => i * 10);
  };
  return {
    batches,
    write,
    /** Lets the oldest held write finish, once one is held. */
    async next() {
      while (gates.length === 0) await new Promise((r) => setTimeout(r, 1));
      gates.shift()!();
    },
  };
}

Deno.test("GroupCommit writes the first item at once and gathers the rest while it writes", async () => {
  const w = heldWrites();
  const gc = new GroupCommit({ write: w.write, onFailure: "reject" });
  const results = [1, 2, 3, 4].map((i) => gc.submit(i));
  await w.next();
  await w.next();
  assert.deepEqual(await Promise.all(results), [10, 20, 30, 40]);
  assert.deepEqual(w.batches, [[1], [2, 3, 4]]);
  assert.equal(gc.pending, 0);
});

Deno.test("GroupCommit keeps batches to maxBatch items", async () => {
  const w = heldWrites();
  const gc = new GroupCommit({ write: w.write, onFailure: "reject", maxBatch: 2 });
  const results = [1, 2, 3, 4, 5].map((i) => gc.submit(i));
  for (let i = 0; i < 3; i++) await w.next();
  await Promise.all(results);
  assert.deepEqual(w.batches, [[1], [2, 3], [4, 5]]);
});

Deno.test("GroupCommit finds an item the database refuses as data by halving, and fails it alone", async () => {
  // The statement fails whenever item 3 is in it, as PostgreSQL does with a NUL in a text column.
  const w = heldWrites((items) => items.includes(3) ? pgError("22021") : null);
  const gc = new GroupCommit({ write: w.write, onFailure: "retry" });
  const first = gc.submit(0);
  const rest = Promise.allSettled([1, 2, 3, 4, 5, 6].map((i) => gc.submit(i)));
  for (let i = 0; i < 6; i++) await w.next();
  await first;
  const settled = await rest;
  assert.deepEqual(settled.map((s) => s.status), [
    "fulfilled",
    "fulfilled",
    "rejected",
    "fulfilled",
    "fulfilled",
    "fulfilled",
  ]);
  assert.equal((settled[2] as PromiseRejectedResult).reason.code, "22021");
  // One try of the whole batch, then halves: [1,2,3] fails again, [1,2] and [3] alone.
  assert.deepEqual(w.batches, [[0], [1, 2, 3, 4, 5, 6], [1, 2, 3], [1, 2], [3], [4, 5, 6]]);
});

Deno.test("GroupCommit treats an integrity violation (class 23) as the data's fault too", async () => {
  const w = heldWrites((items) => items.includes(2) ? pgError("23505") : null);
  const gc = new GroupCommit({ write: w.write, onFailure: "reject" });
  const first = gc.submit(0);
  const pair = Promise.allSettled([1, 2].map((i) => gc.submit(i)));
  for (let i = 0; i < 4; i++) await w.next();
  await first;
  const [one, two] = await pair;
  assert.equal(one!.status, "fulfilled");
  assert.equal(two!.status, "rejected");
  assert.deepEqual(w.batches, [[0], [1, 2], [1], [2]]);
});

Deno.test("GroupCommit with the reject policy fails a whole batch at once on a lost connection", async () => {
  const w = heldWrites((items) => items.length > 1 ? pgError("ECONNREFUSED") : null);
  const gc = new GroupCommit({ write: w.write, onFailure: "reject" });
  const first = gc.submit(0);
  const rest = Promise.allSettled([1, 2, 3].map((i) => gc.submit(i)));
  await w.next();
  await w.next();
  await first;
  const settled = await rest;
  assert.deepEqual(settled.map((s) => s.status), ["rejected", "rejected", "rejected"]);
  // No item is written alone: the database is gone for all of them.
  assert.deepEqual(w.batches, [[0], [1, 2, 3]]);
});

Deno.test("GroupCommit with the retry policy writes a failed batch again, in order, and loses nothing", async () => {
  let failures = 2;
  const retries: number[] = [];
  const w = heldWrites(() => failures-- > 0 ? pgError("CONNECTION_CLOSED") : null);
  const gc = new GroupCommit({
    write: w.write,
    onFailure: "retry",
    onRetry: (_err, info) => retries.push(info.retryInMs),
  });
  const first = gc.submit(1);
  await w.next(); // fails
  const second = gc.submit(2);
  await w.next(); // [1, 2] fails
  await w.next(); // [1, 2] succeeds
  assert.deepEqual(await Promise.all([first, second]), [10, 20]);
  assert.deepEqual(w.batches, [[1], [1, 2], [1, 2]]);
  assert.deepEqual(retries, [50, 100]);
});

Deno.test("GroupCommit refuses a submission at maxPending and says how much room is left", async () => {
  const w = heldWrites();
  const gc = new GroupCommit({ write: w.write, onFailure: "reject", maxPending: 3 });
  const taken = [1, 2, 3].map((i) => gc.submit(i));
  assert.equal(gc.room, 0);
  await assert.rejects(gc.submit(4), QueueFullError);
  await w.next();
  await taken[0];
  assert.equal(gc.room, 1);
  await w.next();
  await Promise.all(taken);
  assert.equal(gc.room, 3);
});

Deno.test("GroupCommit.close gives up on what is not written and drain still resolves", async () => {
  const w = heldWrites(() => pgError("ECONNRESET"));
  const gc = new GroupCommit({ write: w.write, onFailure: "retry" });
  const item = assert.rejects(gc.submit(1), QueueClosedError);
  assert.deepEqual(gc.items(), [1]);
  await w.next(); // fails; retried after a backoff
  gc.close();
  await gc.drain();
  await item;
  await assert.rejects(gc.submit(2), QueueClosedError);
  assert.deepEqual(gc.items(), []);
});

Deno.test("the event writer stores every event of a batch but the one PostgreSQL refuses", async () => {
  const db = await testDatabase();
  try {
    // One event per publication, as POST /events sends them.
    const writer = { submit: (e: EventInput) => db.engine.publish([e]).then(([o]) => o!) };
    const events = Array.from({ length: 30 }, (_, i) => ({
      id: `e${i}`,
      type: "a",
      source: null,
      tenant_id: null,
      // PostgreSQL's jsonb cannot hold \u0000: the statement with this event fails.
      data: i === 7 ? { s: "\u0000" } : { i },
    }));
    const results = await Promise.allSettled(events.map((e) => writer.submit(e)));
    assert.equal(results[7]!.status, "rejected");
    const created = results.filter((r) => r.status === "fulfilled" && r.value.kind === "created");
    assert.equal(created.length, 29);
    assert.equal(await countRows(db.sql, "events"), 29);
    const again = await writer.submit(events[0]!);
    assert.equal(again.kind, "replayed");
    const changed = await writer.submit({ ...events[0]!, data: { i: -1 } });
    assert.equal(changed.kind, "conflict");
  } finally {
    await db.close();
  }
});

Deno.test("GroupCommit keeps batches to maxBatchBytes, and writes a larger item alone", async () => {
  const w = heldWrites();
  const gc = new GroupCommit({
    write: w.write,
    onFailure: "reject",
    maxBatchBytes: 10,
    sizeOf: (i: number) => i,
  });
  const results = [1, 4, 5, 2, 30, 3].map((i) => gc.submit(i));
  for (let i = 0; i < 5; i++) await w.next();
  await Promise.all(results);
  // The first goes at once; then 4 + 5 fit in 10 bytes, 2 more would not; 30 is a batch alone.
  assert.deepEqual(w.batches, [[1], [4, 5], [2], [30], [3]]);
});

Deno.test("GroupCommit withdraws a queued item whose signal aborts: it is never written", async () => {
  const w = heldWrites();
  const gc = new GroupCommit({ write: w.write, onFailure: "reject" });
  const first = gc.submit(1);
  const answered = new AbortController();
  const second = gc.submit(2, { signal: answered.signal });
  const third = gc.submit(3);
  answered.abort(new Error("answered 503"));
  await assert.rejects(second, /answered 503/);
  await w.next();
  await w.next();
  assert.deepEqual([await first, await third], [10, 30]);
  assert.deepEqual(w.batches, [[1], [3]]);
});

Deno.test("GroupCommit writes a batch by its earliest deadline; when that times out, the late item fails and the rest is written again", async () => {
  const writes: { items: number[]; deadline: number | undefined }[] = [];
  const write = (items: number[], deadline: number | undefined) => {
    writes.push({ items, deadline });
    // Like a statement the database aborts at its deadline: nothing written, the write fails.
    if (deadline !== undefined && deadline <= Date.now()) return Promise.reject(pgError("57014"));
    return Promise.resolve(items.map((i) => i * 10));
  };
  const gc = new GroupCommit({ write, onFailure: "reject" });
  const first = gc.submit(1);
  const passed = Date.now() - 1;
  const later = Date.now() + 60_000;
  const second = gc.submit(2, { deadline: passed });
  const third = gc.submit(3, { deadline: later });
  assert.equal(await first, 10);
  await assert.rejects(second, (err: { code?: string }) => err.code === "57014");
  assert.equal(await third, 30);
  assert.deepEqual(writes, [
    { items: [1], deadline: undefined },
    { items: [2, 3], deadline: passed },
    { items: [3], deadline: later },
  ]);
});

Deno.test("GroupCommit fails every item of a timed-out batch when none is past its deadline", async () => {
  const gc = new GroupCommit({
    write: () => Promise.reject(pgError("57014")),
    onFailure: "reject",
  });
  const item = gc.submit(1, { deadline: Date.now() + 60_000 });
  await assert.rejects(item, (err: { code?: string }) => err.code === "57014");
});
