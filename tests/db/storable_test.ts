import assert from "node:assert/strict";
import { isStorable, jsonProblem } from "../../src/storable.ts";

Deno.test("isStorable refuses NUL and unpaired surrogates and takes any other text", () => {
  for (const ok of ["", "plain", "👩‍👩‍👧‍👦", "\u202e", "\ufffd", "\\u0000", "\x01\x7f"]) {
    assert.ok(isStorable(ok), JSON.stringify(ok));
  }
  for (const bad of ["\0", "a\0", "\ud800", "\udc00", "x\ud83d", "\ude00\ud83d"]) {
    assert.ok(!isStorable(bad), JSON.stringify(bad));
  }
});

Deno.test("jsonProblem points at the first bad string, key or number", () => {
  assert.equal(jsonProblem({ a: [1, "x", { b: null, c: true }] }), null);
  assert.deepEqual(jsonProblem({ a: [1, { b: "\0" }] })?.path, ["a", 1, "b"]);
  assert.deepEqual(jsonProblem({ a: { "k\ud800": 1 } }), {
    path: ["a"],
    message: "keys must not contain NUL characters or unpaired UTF-16 surrogates",
  });
  assert.deepEqual(jsonProblem({ n: [Infinity] }), {
    path: ["n", 0],
    message: "must be a finite number",
  });
});

Deno.test("jsonProblem allows maxDepth nested containers and refuses one more", () => {
  const nest = (depth: number) => {
    let v: unknown = "leaf";
    for (let i = 0; i < depth; i++) v = i % 2 ? { a: v } : [v];
    return v;
  };
  assert.equal(jsonProblem(nest(4), 4), null);
  assert.deepEqual(jsonProblem(nest(5), 4), {
    path: [],
    message: "must not nest objects and arrays more than 4 deep",
  });
  assert.equal(jsonProblem(nest(100_000), 32)?.path.length, 0);
});
