import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

/** `depth` nested objects, the innermost holding a number. */
const nested = (depth: number) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value as Record<string, unknown>;
};

/** Asserts a 400 whose message names `field` first. */
Deno.test("event data nested deeper than 32 levels answers 400 naming data; 32 is accepted", async () => {
  const t = await testApp();
  try {
    const ok = await t.call("POST", "/events", { type: "a", data: nested(32) });
    assert.equal(ok.status, 201);
    await ok.body?.cancel();
    for (const depth of [33, 1000]) {
      const res = await t.call("POST", "/events", { type: "a", data: nested(depth) });
      await assertInvalidField(res, "data", `depth ${depth}`);
    }
    // Deep enough to exhaust PostgreSQL's stack were it ever sent there.
    const body = `{"type":"a","data":${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}}`;
    await assertInvalidField(await t.call("POST", "/events", body), "data", "depth 20,000");
    const arrays = `{"type":"a","data":{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`;
    await assertInvalidField(await t.call("POST", "/events", arrays), "data", "arrays");
    const batch = await t.call(
      "POST",
      "/events/batch",
      `{"events":[{"type":"a","data":${JSON.stringify(nested(40))}}]}`,
    );
    assert.ok(batch.status < 500, `batch answered ${batch.status}`);
    await batch.body?.cancel();
    assert.equal(await countRows(t.db.sql, "events"), 1);
  } finally {
    await t.close();
  }
});

Deno.test("NUL and unpaired surrogates answer 400 naming the field, wherever they are", async () => {
  const t = await testApp();
  try {
    const sub = await t.call("POST", "/subscriptions", { id: "sub_1", url: "https://x.example/" });
    assert.equal(sub.status, 201);
    await sub.body?.cancel();
    const cases: [string, string, Record<string, unknown>, string][] = [
      ["POST", "/events", { type: "a", source: "a\0b", data: {} }, "source"],
      ["POST", "/events", { type: "a", source: "\ud800", data: {} }, "source"],
      ["POST", "/events", { type: "a\0", data: {} }, "type"],
      ["POST", "/events", { id: "evt_\udfff", type: "a", data: {} }, "id"],
      ["POST", "/events", { type: "a", data: { s: "x\0" } }, "data.s"],
      ["POST", "/events", { type: "a", data: { list: [1, "\udc00"] } }, "data.list[1]"],
      ["POST", "/events", { type: "a", data: { ok: { "k\0": 1 } } }, "data.ok"],
      ["POST", "/subscriptions", { url: "https://x.example/\0" }, "url"],
      ["POST", "/subscriptions", { url: "https://x.example/\ud800" }, "url"],
      ["POST", "/subscriptions", { url: "https://x.example/\r\nX-Injected: 1" }, "url"],
      ["POST", "/subscriptions", { url: "https://x.example/", description: "\0" }, "description"],
      [
        "POST",
        "/subscriptions",
        { url: "https://x.example/", metadata: { k: "\ud83d" } },
        "metadata.k",
      ],
      [
        "POST",
        "/subscriptions",
        { url: "https://x.example/", metadata: { "\0": "v" } },
        "metadata",
      ],
      [
        "POST",
        "/subscriptions",
        { url: "https://x.example/", secret: "0123456789abcdef\0" },
        "secret",
      ],
      ["PATCH", "/subscriptions/sub_1", { description: "\udbff" }, "description"],
      ["PATCH", "/subscriptions/sub_1", { metadata: { a: "b\0" } }, "metadata.a"],
    ];
    for (const [method, path, body, field] of cases) {
      await assertInvalidField(await t.call(method, path, body), field, JSON.stringify(body));
    }
    await assertInvalidField(await t.call("GET", "/events/evt%00x"), "id", "NUL in a path id");
    // Not UTF-8 once decoded, so the path keeps its escapes: an id that does not exist.
    const undecodable = await t.call("GET", "/subscriptions/%ED%A0%80");
    assert.equal(undecodable.status, 404);
    await undecodable.body?.cancel();
    await assertInvalidField(await t.call("GET", "/events?type=a%00"), "type", "NUL in a query");
    assert.equal(await countRows(t.db.sql, "events"), 0);
    assert.equal(await countRows(t.db.sql, "subscriptions"), 1);
  } finally {
    await t.close();
  }
});

Deno.test("wrong types, huge numbers and reserved prefixes answer 400 naming the field", async () => {
  const t = await testApp();
  try {
    const cases: [string, string, string][] = [
      ["/events", '{"type":1,"data":{}}', "type"],
      ["/events", '{"type":"a","data":"x"}', "data"],
      ["/events", '{"type":"a","data":[1]}', "data"],
      ["/events", '{"type":"a","data":null}', "data"],
      ["/events", '{"type":"a","source":{},"data":{}}', "source"],
      ["/events", '{"type":"a","data":{"n":1e400}}', "data.n"],
      ["/events", '{"type":"a","data":{"n":[-1e999]}}', "data.n[0]"],
      ["/events", '{"id":12345678901234567890,"type":"a","data":{}}', "id"],
      ["/events", "[]", "body"],
      ["/events", '"event"', "body"],
      ["/subscriptions", '{"url":1}', "url"],
      ["/subscriptions", '{"url":"https://x.example/","event_types":"a"}', "event_types"],
      ["/subscriptions", '{"url":"https://x.example/","max_attempts":1e400}', "max_attempts"],
      ["/subscriptions", '{"url":"https://x.example/","max_attempts":"3"}', "max_attempts"],
      ["/subscriptions", '{"url":"https://x.example/","metadata":{"a":1}}', "metadata.a"],
      [
        "/subscriptions",
        '{"url":"https://x.example/","secret":"enc:v1:aaaa:bbbbbbbbbb"}',
        "secret",
      ],
    ];
    for (const [path, body, field] of cases) {
      await assertInvalidField(await t.call("POST", path, body), field, body);
    }
    await assertInvalidField(await t.call("GET", "/events?limit=1e400"), "limit", "huge limit");
    await assertInvalidField(await t.call("GET", "/events?limit=-1"), "limit", "negative limit");
  } finally {
    await t.close();
  }
});

Deno.test("unusual but valid text is stored and returned exactly", async () => {
  const t = await testApp();
  try {
    const source = "billing\u202eevil\u202c 🚀 e\u0301 \u200b'; DROP TABLE events; --";
    const data = {
      "constructor": "x",
      "emoji": "👩‍👩‍👧‍👦",
      "rtl": "\u202bשלום\u202c",
      "sql": "' OR 1=1 --",
      "max": 1.7976931348623157e308,
      "big": 9007199254740991,
      "nested": nested(30),
    };
    // JSON.stringify cannot write a "__proto__" key, so it is spliced in.
    const body = `{"id":"evt_odd","type":"a","source":${JSON.stringify(source)},` +
      `"data":{"__proto__":{"polluted":true},${JSON.stringify(data).slice(1)}}`;
    const sent = JSON.parse(body);
    assert.ok(Object.hasOwn(sent.data, "__proto__"));
    const res = await t.call("POST", "/events", body);
    assert.equal(res.status, 201);
    await res.body?.cancel();
    const got = await json(await t.call("GET", "/events/evt_odd"));
    assert.equal(got.source, source);
    assert.deepEqual(got.data, sent.data);
    assert.ok(Object.hasOwn(got.data, "__proto__"), "a __proto__ key is data, not lost");
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const again = await t.call("POST", "/events", body);
    assert.equal(again.status, 200, "the same content replays");
    await again.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("oversized headers and malformed requests on a real socket answer 4xx, never 5xx", async () => {
  const t = await testApp();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.fetch);
  try {
    const raw = async (request: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      try {
        await conn.write(new TextEncoder().encode(request));
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
      } finally {
        conn.close();
      }
    };
    const requests = [
      `GET /events HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(200_000)}\r\n\r\n`,
      `GET /events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${"k".repeat(1_000_000)}\r\n\r\n`,
      `GET /events HTTP/1.1\r\nhost: x\r\n${"x-h: v\r\n".repeat(500)}\r\n`,
      `GET /${"a".repeat(100_000)} HTTP/1.1\r\nhost: x\r\n\r\n`,
      `POST /events HTTP/1.1\r\nhost: x\r\ncontent-length: nope\r\n\r\n`,
      `POST /events HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab`,
      `GET /events HTTP/1.1\r\nhost: x\r\nx-a: b\0c\r\n\r\n`,
      `NOT A REQUEST\r\n\r\n`,
    ];
    for (const request of requests) {
      const status = await raw(request);
      assert.match(status ?? "", /^HTTP\/1\.1 4\d\d /, request.slice(0, 60));
    }
  } finally {
    await server.shutdown();
    await t.close();
  }
});
