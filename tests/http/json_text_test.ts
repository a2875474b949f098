import assert from "node:assert/strict";
import { arrayElements, objectMembers } from "../../src/http/json_text.ts";
import { anyJson, Rng } from "../helpers/fuzz.ts";

const textOf = (doc: string, span: { start: number; end: number }) =>
  doc.slice(span.start, span.end);

Deno.test("objectMembers finds each member's text, past strings that hold quotes and brackets", () => {
  const doc =
    ` { "a\\"}]" : "x\\\\" , "data":{"s":"}\\"{[" ,"n":[1e308, {}]} ,\n"d\\u0061ta": [ 1 ] }`;
  const members = objectMembers(doc, 0);
  assert.deepEqual([...members.keys()], ['a"}]', "data"]);
  // A repeated key keeps its last value, as JSON.parse does ("d\u0061ta" is "data").
  assert.equal(textOf(doc, members.get("data")!), "[ 1 ]");
  assert.equal(textOf(doc, members.get('a"}]')!), '"x\\\\"');
  assert.deepEqual(objectMembers("[1]", 0), new Map());
});

Deno.test("arrayElements and objectMembers agree with JSON.parse on seeded random documents", () => {
  const rng = new Rng(17);
  for (let i = 0; i < 500; i++) {
    const items = Array.from({ length: rng.int(4) }, () => ({ data: anyJson(rng, 4), type: "t" }));
    const doc = JSON.stringify({ events: items }, null, rng.chance(0.5) ? 2 : undefined);
    const events = objectMembers(doc, 0).get("events")!;
    const spans = arrayElements(doc, events.start);
    assert.equal(spans.length, items.length, doc);
    spans.forEach((span, k) => {
      const data = objectMembers(doc, span.start).get("data")!;
      assert.deepEqual(JSON.parse(textOf(doc, data)), JSON.parse(doc).events[k].data, doc);
    });
  }
});
