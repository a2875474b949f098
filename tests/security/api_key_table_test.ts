import assert from "node:assert/strict";
import type { StoredKey } from "../../src/views/api_keys.ts";
import { isOneOf } from "../../src/http/auth.ts";
import { ApiKeyTable, newToken, tokenDigest } from "../../src/security/api_key_table.ts";

function key(token: string, overrides: Partial<StoredKey> = {}): StoredKey {
  return {
    id: `key_${token}`,
    token_sha256: tokenDigest(token),
    scope: "tenant",
    tenant_id: "acme",
    expires_at: null,
    ...overrides,
  };
}

/** A table over a fake database and clock; `reads` records what each read was given. */
function fixture(rows: StoredKey[]) {
  const clock = { now: 1_000_000 };
  const reads: { id: string; at: Date }[][] = [];
  let gate: Promise<void> | null = null;
  let fail = false;
  const table = new ApiKeyTable(async (used) => {
    reads.push(used);
    if (gate) await gate;
    if (fail) throw new Error("database away");
    return [...rows];
  }, { now: () => clock.now });
  return {
    table,
    clock,
    reads,
    rows,
    hold() {
      const { promise, resolve } = Promise.withResolvers<void>();
      gate = promise;
      return () => {
        gate = null;
        resolve();
      };
    },
    failing(on: boolean) {
      fail = on;
    },
  };
}

/** Lets fire-and-forget reads run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("a key is found by its token's SHA-256, and another token finds nothing", async () => {
  const f = fixture([key("tok_a")]);
  assert.equal((await f.table.find(tokenDigest("tok_a")))?.id, "key_tok_a");
  assert.equal(await f.table.find(tokenDigest("tok_b")), undefined);
});

Deno.test("the table is read again once it is a second old, and not before", async () => {
  const f = fixture([key("tok_a")]);
  await f.table.find(tokenDigest("tok_a"));
  await settle();
  const afterFirst = f.reads.length;
  f.rows.length = 0; // revoked in another process
  f.clock.now += 999;
  assert.ok(await f.table.find(tokenDigest("tok_a")), "still in the table read 999 ms ago");
  assert.equal(f.reads.length, afterFirst);
  f.clock.now += 1;
  assert.equal(await f.table.find(tokenDigest("tok_a")), undefined, "refused once 1 s old");
  assert.equal(f.reads.length, afterFirst + 1);
});

Deno.test("lookups that find the table old share one read", async () => {
  const f = fixture([key("tok_a")]);
  const release = f.hold();
  const lookups = Array.from({ length: 5 }, () => f.table.find(tokenDigest("tok_a")));
  release();
  const found = await Promise.all(lookups);
  assert.ok(found.every((k) => k?.id === "key_tok_a"));
  await settle();
  // One read for the five lookups, then one that writes the key's use (once, not five times).
  assert.deepEqual(f.reads.map((used) => used.length), [0, 1]);
});

Deno.test("a read that took longer than the bound is not fresh enough: the lookup reads again", async () => {
  const f = fixture([key("tok_a")]);
  const release = f.hold();
  const lookup = f.table.find(tokenDigest("tok_a"));
  await settle();
  f.clock.now += 1500; // the read started 1.5 s ago by the time it answers
  f.rows.length = 0; // and the key was revoked meanwhile
  release();
  assert.equal(await lookup, undefined);
  assert.equal(f.reads.length, 2);
});

Deno.test("an expired key is refused from the moment it expires, without a read", async () => {
  const f = fixture([key("tok_a", { expires_at: new Date(1_000_500) })]);
  assert.ok(await f.table.find(tokenDigest("tok_a")));
  await settle();
  const reads = f.reads.length;
  f.clock.now = 1_000_500;
  assert.equal(await f.table.find(tokenDigest("tok_a")), undefined);
  assert.equal(f.reads.length, reads);
});

Deno.test("a key revoked in this process is forgotten at once", async () => {
  const f = fixture([key("tok_a")]);
  assert.ok(await f.table.find(tokenDigest("tok_a")));
  f.table.forget("key_tok_a");
  assert.equal(await f.table.find(tokenDigest("tok_a")), undefined);
});

Deno.test("use is written at most once a minute per key, with a read of the table", async () => {
  const f = fixture([key("tok_a"), key("tok_b")]);
  for (let i = 0; i < 3; i++) await f.table.find(tokenDigest("tok_a"));
  await f.table.find(tokenDigest("tok_b"));
  await settle();
  const written = () => f.reads.flat().map((u) => u.id);
  assert.deepEqual(written().sort(), ["key_tok_a", "key_tok_b"]);
  f.clock.now += 59_999;
  await f.table.find(tokenDigest("tok_a"));
  await settle();
  assert.deepEqual(written().filter((id) => id === "key_tok_a").length, 1);
  f.clock.now += 1;
  await f.table.find(tokenDigest("tok_a"));
  await settle();
  assert.deepEqual(written().filter((id) => id === "key_tok_a").length, 2);
  assert.equal(f.reads.flat().at(-1)!.at.getTime(), f.clock.now);
});

Deno.test("when the table cannot be read the lookup fails, and the uses it held are written later", async () => {
  const f = fixture([key("tok_a")]);
  await f.table.find(tokenDigest("tok_a"));
  f.failing(true); // the read that writes this use fails
  await settle();
  f.clock.now += 1000;
  await assert.rejects(f.table.find(tokenDigest("tok_a")), /database away/);
  f.failing(false);
  f.clock.now += 1000;
  await f.table.find(tokenDigest("tok_a"));
  assert.deepEqual(f.reads.map((used) => used.map((u) => u.id)), [
    [],
    ["key_tok_a"],
    ["key_tok_a"],
    ["key_tok_a"],
  ]);
});

Deno.test("new tokens are dk_ and 32 random bytes in base64url", () => {
  const a = newToken();
  assert.match(a, /^dk_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, newToken());
});

Deno.test("isOneOf() compares the given digest with every configured one, whichever matches", () => {
  const digests = ["k1", "k2", "k3"].map(tokenDigest);
  for (const [given, expected] of [["k1", true], ["k3", true], ["nope", false]] as const) {
    const compared: [number, number][] = [];
    const compare = (a: Uint8Array, b: Uint8Array) => {
      compared.push([a.length, b.length]);
      return a.every((x, i) => x === b[i]);
    };
    assert.equal(isOneOf(tokenDigest(given), digests, { compare }), expected, given);
    // No early exit, and only 32-byte digests reach the comparison, never the keys themselves.
    assert.deepEqual(compared, [[32, 32], [32, 32], [32, 32]], given);
  }
});
