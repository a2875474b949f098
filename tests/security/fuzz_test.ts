/**
 * Thousands of malformed and hostile requests from a seeded PRNG, against
 * the real app and database, interleaved with valid requests whose effects
 * are modelled here. Every answer must be 2xx or 4xx and come in time, and
 * afterwards the database must hold exactly what the valid requests made.
 *
 * FUZZ_SEED=<n> replays a run; FUZZ_REQUESTS=<n> changes its length.
 *
 * @module
 */
import assert from "node:assert/strict";
import { testApp } from "../helpers/app.ts";
import {
  anyJson,
  deepObject,
  garbageBody,
  nastyText,
  niceMetadata,
  niceObject,
  niceString,
  poisonText,
  Rng,
} from "../helpers/fuzz.ts";

const apiKey = "fuzz-api-key-0123456789";
const requestTimeoutMs = 10_000;
const maxPayloadBytes = 64 * 1024;

interface Spec {
  method: string;
  /** Path and query, sent as is. */
  target: string;
  headers: [string, string][];
  body: string | Uint8Array | null;
}

/** What a request must answer: exactly this status, any 4xx, or anything but a 5xx. */
type Expect = { status: number } | "4xx" | "any";

interface Sub {
  url: string;
  event_types: string[];
  description: string | null;
  active: boolean;
  max_attempts: number | null;
  metadata: Record<string, string>;
}

interface Evt {
  type: string;
  source: string | null;
  data: Record<string, unknown>;
}

const eventTypes = ["order.created", "order.paid.late", "user.deleted", "a.b.c", "misc"];
const patterns = ["*", "order.*", "order.created", "user.deleted", "a.b.*", "nothing.*"];

function matches(pattern: string, type: string): boolean {
  return pattern === "*" || pattern === type ||
    (pattern.endsWith(".*") && type.startsWith(pattern.slice(0, -1)));
}

/** The state the valid requests should have produced. */
class Model {
  subs = new Map<string, Sub>();
  events = new Map<string, Evt>();
  deliveries = new Set<string>();

  addEvent(id: string, event: Evt) {
    this.events.set(id, event);
    for (const [subId, sub] of this.subs) {
      if (sub.active && sub.event_types.some((p) => matches(p, event.type))) {
        this.deliveries.add(`${id} ${subId}`);
      }
    }
  }
}

/** A marker for JSON text that JSON.stringify cannot write (1e400) or would overflow on. */
const raw = (text: string) => `RAW:${btoa(text)}`;

/** JSON text with every {@linkcode raw} marker replaced by its text. */
const withRaw = (value: unknown) =>
  JSON.stringify(value).replace(/"RAW:([A-Za-z0-9+/=]*)"/g, (_, b64: string) => atob(b64));

const jsonHeaders = (): [string, string][] => [
  ["content-type", "application/json"],
  ["authorization", `Bearer ${apiKey}`],
];

// Values each field must refuse.
const badEventFields: Record<string, unknown[]> = {
  id: [123, "", "a b", "a/b", "x".repeat(256), "é", "_x", null, {}, "' OR 1=1--", ...poisonText],
  type: [1, "", "a b", "*", "order.*", "x".repeat(256), "tab\t", null, [], ...poisonText],
  source: ["", "x".repeat(256), 1, null, {}, [], ...poisonText],
  data: [
    "x",
    1,
    [],
    null,
    true,
    deepObject(33),
    deepObject(300),
    // Past PostgreSQL's stack limit for jsonb, well within the body limit.
    raw(`${'{"a":'.repeat(8000)}1${"}".repeat(8000)}`),
    { s: "\0" },
    { k: ["\ud800"] },
    { n: raw("1e400") },
    { n: raw("-1e999") },
  ],
  zz_unknown: [1, "x", null],
};

const badUrls = [
  1,
  "",
  "ftp://x.example/",
  "javascript:alert(1)",
  "file:///etc/passwd",
  "gopher://x.example/",
  "http://user:pw@x.example/",
  "http://169.254.169.254/latest/meta-data/",
  "http://[::ffff:127.0.0.1]/",
  "http://[::1]:8080/",
  "http://localhost/",
  "http://evil.localhost/",
  "http://10.0.0.1/",
  "http://2130706433/",
  "http://0x7f.1/",
  "https://x.example/\r\nHost: evil",
  "https://x.example/" + "a".repeat(2100),
  "not a url",
  "//x.example/",
  ...poisonText.map((p) => `https://x.example/${p}`),
];

const badSubscriptionFields: Record<string, unknown[]> = {
  url: badUrls,
  event_types: ["a", [], [""], ["**"], ["*.a"], new Array(101).fill("a"), [1], ["a b"], [null]],
  description: [1, "x".repeat(1025), [], ...poisonText],
  secret: [
    "",
    "whsec_!!!!!!!!!!!!!!!!",
    "whsec_" + btoa("x".repeat(10)),
    "x".repeat(257),
    "enc:v1:aaaa:bbbbbbbbbbbbbbbbb",
    1,
    ...poisonText.map((p) => p.repeat(20)),
  ],
  active: ["true", 1, null, raw("tru")],
  max_attempts: [0, 101, 1.5, -1, "3", raw("1e400"), true],
  metadata: [
    [],
    "x",
    { a: 1 },
    { a: "x".repeat(1025) },
    { ["k".repeat(65)]: "v" },
    Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"])),
    { "\0": "v" },
    { a: null },
    { a: "\ud800" },
  ],
  id: [1, "", "a b", "a/b", "x".repeat(256), ...poisonText],
  zz_unknown: [true],
};

// PATCH accepts null for description and max_attempts, and has no id or secret.
const badPatchFields: Record<string, unknown[]> = {
  ...Object.fromEntries(
    Object.entries(badSubscriptionFields).filter(([k]) => !["id", "secret"].includes(k)),
  ),
  description: [1, "x".repeat(1025), ...poisonText],
  max_attempts: [0, 101, "3", raw("1e400")],
  secret: ["a-new-secret-of-enough-length"],
};

/** A body that cannot be accepted: a valid base with one to three fields made invalid. */
function invalidBody(rng: Rng, base: Record<string, unknown>, bad: Record<string, unknown[]>) {
  if (rng.chance(0.15)) {
    const garbage = garbageBody(rng);
    // A garbage body that happens to be a JSON object could be a valid (empty) PATCH.
    return typeof garbage === "string" && /^\s*\{.*\}\s*$/s.test(garbage) ? "{" : garbage;
  }
  if (rng.chance(0.03)) return JSON.stringify({ ...base, pad: "x".repeat(maxPayloadBytes) });
  return invalidFields(rng, base, bad);
}

/** JSON object text: the base with one to three fields set to values they must refuse. */
function invalidFields(rng: Rng, base: Record<string, unknown>, bad: Record<string, unknown[]>) {
  const body: Record<string, unknown> = { ...base };
  const fields = Object.keys(bad);
  for (let i = 1 + rng.int(3); i > 0; i--) {
    const field = rng.pick(fields);
    body[field] = rng.pick(bad[field]!);
  }
  return withRaw(body);
}

const hostileIds = [
  "evt_nope",
  "sub_nope",
  "%00",
  "a%00b",
  "%ED%A0%80",
  "%F0%9F%9A%80",
  "%",
  "%zz",
  "..",
  "%2e%2e",
  "a".repeat(300),
  encodeURIComponent("'; DROP TABLE subscriptions; --"),
  encodeURIComponent("<script>"),
  "%0d%0aX-Injected:%20yes",
  "ids;x=1",
  "~",
  "%C0%AE",
];

const pathTemplates = [
  "/events",
  "/events/{id}",
  "/events/{id}/attempts",
  "/events/{id}/deliveries",
  "/events/{id}/retry",
  "/events/batch",
  "/subscriptions",
  "/subscriptions/{id}",
  "/subscriptions/{id}/rotate-secret",
  "/healthz",
  "/readyz",
  "/metrics",
  "/openapi.json",
  "/docs",
  "/",
  "/admin",
  "/events/{id}/{id}",
  "/../../etc/passwd",
  "/%2e%2e/%2e%2e/etc/passwd",
  "//events",
  "/events/",
  "/EVENTS",
  "/events;x",
  "/subscriptions/{id}/rotate-secret/extra",
  "/.env",
  "/%00",
  "/" + "a".repeat(5000),
];

function randomQuery(rng: Rng): string {
  if (rng.chance(0.4)) return "";
  const keys = ["type", "status", "limit", "cursor", "x", "", "__proto__", "type[]"];
  const values = [
    "order.created",
    "delivered",
    "bogus",
    "1",
    "0",
    "-1",
    "1e400",
    "0x10",
    "1000",
    "1001",
    "%00",
    "%ED%A0%80",
    "%",
    btoa("c-5"),
    btoa("c99999999999999999999"),
    "Yzk",
    encodeURIComponent(rng.pick(nastyText)),
    "a".repeat(rng.int(3000)),
  ];
  const pairs = Array.from({ length: 1 + rng.int(4) }, () => {
    const k = rng.pick(keys);
    return rng.chance(0.1) ? k : `${k}=${rng.pick(values)}`;
  });
  return `?${pairs.join("&")}`;
}

function randomHeaders(rng: Rng): [string, string][] {
  const headers: [string, string][] = [];
  if (rng.chance(0.8)) {
    headers.push([
      "content-type",
      rng.pick([
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "application/vnd.api+json",
        "APPLICATION/JSON",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "json",
        "",
      ]),
    ]);
  }
  const auth = rng.int(10);
  if (auth < 7) headers.push(["authorization", `Bearer ${apiKey}`]);
  else if (auth < 9) {
    headers.push([
      "authorization",
      rng.pick([
        "",
        "Bearer",
        "Basic Zm9vOmJhcg==",
        `Bearer ${apiKey}x`,
        `Bearer ${apiKey} ${apiKey}`,
        `bearer    ${apiKey}`,
        "Bearer " + "k".repeat(10_000),
        "Bearer ' OR 1=1 --",
      ]),
    ]);
  }
  if (rng.chance(0.2)) {
    headers.push(["x-request-id", rng.pick(["abc", "a".repeat(500), "<script>", "a b", "é"])]);
  }
  if (rng.chance(0.1)) headers.push(["x-forwarded-for", "127.0.0.1"]);
  if (rng.chance(0.05)) headers.push(["x-big", "v".repeat(rng.int(60_000))]);
  if (rng.chance(0.05)) headers.push(["x-bad", rng.pick(["a\r\nX-Injected: 1", "\0", "\x7f"])]);
  if (rng.chance(0.05)) headers.push(["content-length", rng.pick(["-1", "abc", "99999999999"])]);
  return headers;
}

/** A request of any method to any path, with random headers, query and body. */
function randomRequest(rng: Rng, validIds: string[]): Spec {
  const method = rng.pick([
    "GET",
    "GET",
    "HEAD",
    "POST",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "PROPFIND",
    "FOO",
    "patch",
  ]);
  // Only reads may name things that exist: a write to them could be valid by chance.
  const reads = method === "GET" || method === "HEAD";
  const id = () =>
    reads && validIds.length > 0 && rng.chance(0.3) ? rng.pick(validIds) : rng.pick(hostileIds);
  const path = rng.pick(pathTemplates).replaceAll("{id}", id);
  const body = rng.chance(0.5)
    ? null
    : rng.chance(0.5)
    ? garbageBody(rng)
    : JSON.stringify(anyJson(rng, 4));
  return { method, target: path + randomQuery(rng), headers: randomHeaders(rng), body };
}

interface Outcome {
  status: number;
  text: string;
  socket: boolean;
}

/** Sends over a raw TCP connection: what a client can send that `Request` would refuse. */
async function sendRaw(port: number, spec: Spec): Promise<Outcome> {
  const encoder = new TextEncoder();
  const body = typeof spec.body === "string" ? encoder.encode(spec.body) : spec.body;
  const lines = [
    `${spec.method} ${spec.target} HTTP/1.1`,
    "host: dispatch.test",
    "connection: close",
    ...spec.headers.filter(([n]) => n !== "content-length").map(([n, v]) => `${n}: ${v}`),
    `content-length: ${body?.length ?? 0}`,
  ];
  const head = encoder.encode(`${lines.join("\r\n")}\r\n\r\n`);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = new Uint8Array(head.length + (body?.length ?? 0));
    bytes.set(head);
    if (body) bytes.set(body, head.length);
    // The server may answer and close before reading everything: that is its right.
    await conn.write(bytes).catch(() => {});
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    return { status, text, socket: true };
  } finally {
    conn.close();
  }
}

Deno.test("fuzz: hostile requests get 2xx or 4xx, never 5xx, and change nothing", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? crypto.getRandomValues(new Uint32Array(1))[0]);
  const total = Number(Deno.env.get("FUZZ_REQUESTS") ?? 6000);
  console.log(`fuzz seed ${seed} (FUZZ_SEED=${seed} replays this run)`);
  const rng = new Rng(seed);
  const t = await testApp({ apiKeys: [apiKey], allowPrivateTargets: false, maxPayloadBytes });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.fetch);
  const model = new Model();
  const counts = { requests: 0, valid: 0, socket: 0, "2xx": 0, "4xx": 0, "5xx": 0 };
  const failures: string[] = [];
  let n = 0;
  const started = performance.now();

  async function send(spec: Spec, expect: Expect, label: string, viaSocket = false) {
    counts.requests++;
    if (typeof expect === "object") counts.valid++;
    let request: Request | null = null;
    if (!viaSocket) {
      try {
        request = new Request(`http://dispatch.test${spec.target}`, {
          method: spec.method,
          headers: spec.headers,
          body: spec.body as BodyInit | null,
        });
      } catch {
        // Not expressible as a Request (forbidden method, bad header, body on GET): raw bytes.
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer in time")), requestTimeoutMs);
    });
    let outcome: Outcome;
    try {
      outcome = await Promise.race([
        request === null
          ? sendRaw(server.addr.port, spec)
          : Promise.resolve(t.fetch(request)).then(async (res) => ({
            status: res.status,
            text: await res.text(),
            socket: false,
          })),
        late,
      ]);
    } catch (err) {
      failures.push(`${label}: ${spec.method} ${spec.target.slice(0, 80)}: ${err}`);
      return null;
    } finally {
      clearTimeout(timer);
    }
    if (outcome.socket) counts.socket++;
    const family = outcome.status >= 500 ? "5xx" : outcome.status >= 400 ? "4xx" : "2xx";
    counts[family]++;
    const what = `${label}: ${spec.method} ${spec.target.slice(0, 80)} answered ${outcome.status}` +
      ` ${outcome.text.slice(0, 300)}`;
    const okStatus = expect === "any"
      ? outcome.status >= 200 && outcome.status < 500
      : expect === "4xx"
      ? family === "4xx"
      : outcome.status === expect.status;
    if (!okStatus) failures.push(what);
    // The app answers every error in one shape; Deno's own 400s for broken HTTP have no body.
    if (family === "4xx" && !outcome.socket && spec.method !== "HEAD") {
      const error = JSON.parse(outcome.text)?.error;
      if (typeof error?.code !== "string" || typeof error?.message !== "string") {
        failures.push(`${what}: not an error body`);
      }
    }
    return outcome;
  }

  const json = (method: string, target: string, body: unknown): Spec => ({
    method,
    target,
    headers: jsonHeaders(),
    // Garbage bytes go as bytes: JSON.stringify(new Uint8Array(0)) would be a valid "{}".
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });

  const validOps: [number, () => Promise<unknown>][] = [
    [3, async () => {
      const id = `ok_sub_${n++}`;
      const sub: Sub = {
        url: `https://hooks-${n}.example.com/in/${encodeURIComponent(niceString(rng))}?q=1`,
        event_types: Array.from({ length: 1 + rng.int(3) }, () => rng.pick(patterns)),
        description: rng.chance(0.5) ? niceString(rng, 1024) : null,
        active: rng.chance(0.8),
        max_attempts: rng.chance(0.5) ? 1 + rng.int(100) : null,
        metadata: niceMetadata(rng),
      };
      const body = {
        id,
        ...sub,
        description: sub.description ?? undefined,
        max_attempts: sub.max_attempts ?? undefined,
      };
      if (await send(json("POST", "/subscriptions", body), { status: 201 }, "valid sub")) {
        model.subs.set(id, sub);
      }
    }],
    [5, async () => {
      const id = `ok_evt_${n++}`;
      const event: Evt = {
        type: rng.pick(eventTypes),
        source: rng.chance(0.7) ? niceString(rng, 255) : null,
        data: niceObject(rng, 4),
      };
      const body = { id, type: event.type, data: event.data, source: event.source ?? undefined };
      if (await send(json("POST", "/events", body), { status: 201 }, "valid event")) {
        model.addEvent(id, event);
      }
    }],
    [1, async () => {
      const ids = Array.from({ length: 1 + rng.int(4) }, () => `ok_evt_${n++}`);
      const events = ids.map((id) => ({
        id,
        type: rng.pick(eventTypes),
        data: niceObject(rng, 3),
      }));
      const out = await send(json("POST", "/events/batch", { events }), { status: 200 }, "batch");
      if (!out) return;
      const statuses = JSON.parse(out.text).results.map((r: { status: number }) => r.status);
      if (statuses.some((s: number) => s !== 201)) failures.push(`batch: ${out.text}`);
      for (const e of events) model.addEvent(e.id, { type: e.type, source: null, data: e.data });
    }],
    [1, async () => {
      if (model.events.size === 0) return;
      const [id, event] = rng.pick([...model.events]);
      const body = { id, type: event.type, data: event.data, source: event.source ?? undefined };
      await send(json("POST", "/events", body), { status: 200 }, "replay");
    }],
    [2, async () => {
      if (model.subs.size === 0) return;
      const [id, sub] = rng.pick([...model.subs]);
      const patch: Partial<Sub> = {};
      if (rng.chance(0.5)) patch.description = rng.chance(0.2) ? null : niceString(rng, 1024);
      if (rng.chance(0.3)) patch.active = rng.chance(0.5);
      if (rng.chance(0.3)) patch.event_types = [rng.pick(patterns)];
      if (rng.chance(0.2)) patch.max_attempts = rng.chance(0.3) ? null : 1 + rng.int(100);
      if (rng.chance(0.2)) patch.metadata = niceMetadata(rng);
      if (await send(json("PATCH", `/subscriptions/${id}`, patch), { status: 200 }, "patch")) {
        Object.assign(sub, patch);
      }
    }],
    [2, async () => {
      const ids = [...model.events.keys(), ...model.subs.keys()];
      if (ids.length === 0) return;
      const id = rng.pick(ids);
      const path = id.startsWith("ok_evt")
        ? rng.pick([`/events/${id}`, `/events/${id}/attempts`, `/events/${id}/deliveries`])
        : `/subscriptions/${id}`;
      await send({ method: "GET", target: path, headers: jsonHeaders(), body: null }, {
        status: 200,
      }, "read");
    }],
  ];

  const hostileOps: [number, () => Promise<unknown>][] = [
    [6, () => send(randomRequest(rng, [...model.events.keys()]), "any", "random")],
    [4, () => {
      const base = { type: "order.created", data: { ok: true } };
      return send(json("POST", "/events", invalidBody(rng, base, badEventFields)), "4xx", "event");
    }],
    [3, () => {
      const base = { url: "https://hooks.example.com/in" };
      const body = invalidBody(rng, base, badSubscriptionFields);
      return send(json("POST", "/subscriptions", body), "4xx", "subscription");
    }],
    [2, () => {
      const id = model.subs.size > 0 && rng.chance(0.7)
        ? rng.pick([...model.subs.keys()])
        : rng.pick(hostileIds);
      const body = invalidBody(rng, { description: "x" }, badPatchFields);
      return send(json("PATCH", `/subscriptions/${id}`, body), "4xx", "patch");
    }],
    [1, async () => {
      // Each item invalid: the envelope may be accepted, but every item must be refused.
      const items = Array.from(
        { length: 1 + rng.int(3) },
        () => invalidFields(rng, { type: "a", data: {} }, badEventFields),
      );
      const body = `{"events":[${items.join(",")}]}`;
      const out = await send(json("POST", "/events/batch", body), "any", "batch");
      if (out?.status === 200) {
        const results = JSON.parse(out.text).results as { status: number }[];
        if (results.some((r) => r.status !== 400)) failures.push(`bad batch stored: ${out.text}`);
      }
    }],
    [1, () => {
      // A request that cannot be valid, with hostile headers over a real socket.
      const spec = randomRequest(rng, []);
      spec.method = "POST";
      spec.target = rng.pick(["/events", "/subscriptions"]);
      spec.body = invalidBody(rng, { type: "a", data: {} }, badEventFields);
      return send(spec, "4xx", "socket", true);
    }],
  ];

  const choose = (ops: [number, () => Promise<unknown>][]) => {
    const weight = ops.reduce((sum, [w]) => sum + w, 0);
    let r = rng.int(weight);
    for (const [w, op] of ops) {
      if ((r -= w) < 0) return op;
    }
    return ops[0]![1];
  };

  try {
    while (counts.requests < total && failures.length < 20) {
      await choose(rng.chance(0.25) ? validOps : hostileOps)();
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `fuzz summary: seed ${seed}, ${counts.requests} requests (${counts.valid} valid, ` +
        `${counts.socket} over a socket), ${counts["2xx"]} 2xx, ${counts["4xx"]} 4xx, ` +
        `${counts["5xx"]} 5xx, ${failures.length} failures, ${seconds} s`,
    );
    assert.deepEqual(failures, [], `seed ${seed}`);
    assert.equal(counts["5xx"], 0);

    const subs = await t.db.sql<({ id: string } & Sub)[]>`
      SELECT id, url, event_types, description, active, max_attempts, metadata
      FROM subscriptions ORDER BY id`;
    assert.deepEqual(
      Object.fromEntries(subs.map(({ id, ...s }) => [id, s])),
      Object.fromEntries(model.subs),
      `seed ${seed}: subscriptions`,
    );
    const events = await t.db.sql<({ id: string } & Evt)[]>`
      SELECT id, type, source, data FROM events ORDER BY id`;
    assert.deepEqual(
      Object.fromEntries(events.map(({ id, ...e }) => [id, e])),
      Object.fromEntries(model.events),
      `seed ${seed}: events`,
    );
    const deliveries = await t.db.sql<{ pair: string }[]>`
      SELECT event_id || ' ' || subscription_id AS pair FROM deliveries`;
    assert.deepEqual(
      new Set(deliveries.map((d) => d.pair)),
      model.deliveries,
      `seed ${seed}: deliveries`,
    );
    assert.ok(model.events.size > 50 && model.subs.size > 20, "the valid requests did something");
  } finally {
    await server.shutdown();
    await t.close();
  }
});
