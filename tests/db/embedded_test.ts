import assert from "node:assert/strict";
import postgres from "postgres";
import { startEmbedded } from "../../src/db/embedded.ts";

type Sql = postgres.Sql;

/** Runs `fn` against a pool of four on a fresh embedded database, then tears everything down. */
async function withDatabase(fn: (sql: Sql) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-embedded-" });
  try {
    const db = await startEmbedded({ dataDir });
    try {
      // As Dispatch connects to it: the pool's prepared statements would collide in its one
      // session (see `PoolOptions.prepare`).
      const sql = postgres(db.url, { max: 4, onnotice: () => {}, prepare: false });
      try {
        await fn(sql);
      } finally {
        await sql.end();
      }
    } finally {
      await db.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("startEmbedded() serves postgres.js transactions and concurrent queries from a pool of four", async () => {
  await withDatabase(async (sql) => {
    await sql`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)`;
    await sql.begin(async (tx) => {
      await tx`INSERT INTO items VALUES (1, 'one')`;
      await tx`INSERT INTO items VALUES (2, 'two')`;
    });
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`INSERT INTO items VALUES (3, 'three')`;
        await tx`INSERT INTO items VALUES (1, 'duplicate')`;
      }),
      { code: "23505" },
    );

    // Reserving four connections at once proves the server takes more than one.
    const connections = await Promise.all([1, 2, 3, 4].map(() => sql.reserve()));
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const connection = connections[i % connections.length]!;
          return connection`SELECT ${i}::int AS i, count(*)::int AS n FROM items`;
        }),
      );
      assert.deepEqual(
        results.map((rows) => rows[0]),
        Array.from({ length: 20 }, (_, i) => ({ i, n: 2 })),
      );
    } finally {
      for (const connection of connections) connection.release();
    }
  });
});

Deno.test("startEmbedded() keeps data across a stop and a start on the same directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "dispatch-embedded-" });
  // A missing parent shows that startEmbedded() creates the whole path.
  const dataDir = `${root}/nested/data`;
  try {
    const first = await startEmbedded({ dataDir });
    const before = postgres(first.url, { max: 4, onnotice: () => {} });
    await before`CREATE TABLE notes (body text NOT NULL)`;
    await before`INSERT INTO notes VALUES ('kept')`;
    await before.end();
    await first.stop();

    const second = await startEmbedded({ dataDir });
    const after = postgres(second.url, { max: 4, onnotice: () => {} });
    try {
      assert.deepEqual([...await after`SELECT body FROM notes`], [{ body: "kept" }]);
    } finally {
      await after.end();
      await second.stop();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("startEmbedded() refuses a directory that another instance is using", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-embedded-" });
  try {
    const first = await startEmbedded({ dataDir });
    try {
      await assert.rejects(startEmbedded({ dataDir }), {
        message:
          `Another process is using the embedded database in "${dataDir}": stop it, or set DISPATCH_DATA_DIR to another folder`,
      });
    } finally {
      await first.stop();
    }
    // Released on stop: the directory can be opened again.
    const again = await startEmbedded({ dataDir });
    await again.stop();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("startEmbedded() refuses a client without this start's password", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-embedded-" });
  const db = await startEmbedded({ dataDir });
  try {
    const url = new URL(db.url);
    assert.match(url.password, /^[0-9a-f]{64}$/);
    for (const password of ["wrong", "", url.password.slice(1)]) {
      const other = new URL(db.url);
      other.password = password;
      const sql = postgres(other.toString(), { max: 1, onnotice: () => {} });
      try {
        await assert.rejects(sql`SELECT 1`, { code: "28P01" });
      } finally {
        await sql.end();
      }
    }
    // A client that skips the password and sends a query is cut off.
    const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
    const startup = [0, 0, 0, 23, 0, 3, 0, 0, ...new TextEncoder().encode("user\0postgres\0\0")];
    await conn.write(new Uint8Array(startup));
    await conn.write(
      new Uint8Array([0x51, 0, 0, 0, 13, ...new TextEncoder().encode("SELECT 1\0")]),
    );
    const answer = new Uint8Array(await new Response(conn.readable).arrayBuffer());
    const text = new TextDecoder().decode(answer);
    assert.equal(text[0], "R", "asked for a password");
    assert.match(text, /28P01/);
    assert.doesNotMatch(text, /Z/);
  } finally {
    await db.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("startEmbedded() rejects a port that is already taken", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-embedded-" });
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(startEmbedded({ dataDir, port: taken.addr.port }), {
      message: `Cannot serve the embedded database on "127.0.0.1:${taken.addr.port}"`,
    });
  } finally {
    taken.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("startEmbedded() supports session and transaction advisory locks", async () => {
  await withDatabase(async (sql) => {
    await sql`SELECT pg_advisory_lock(1)`;
    const [unlocked] = await sql`SELECT pg_advisory_unlock(1) AS ok`;
    assert.equal(unlocked?.ok, true);
    await sql.begin(async (tx) => {
      const [locked] = await tx`SELECT pg_try_advisory_xact_lock(2) AS ok`;
      assert.equal(locked?.ok, true);
    });
  });
});

Deno.test("startEmbedded() runs prepared statements with parameters and array parameters", async () => {
  await withDatabase(async (sql) => {
    // The second round reuses the statements the first one prepared.
    for (const offset of [0, 10]) {
      const [row] = await sql`SELECT ${
        offset + 1
      }::int + ${2}::int AS sum, ${"text"}::text AS label`;
      assert.deepEqual(row, { sum: offset + 3, label: "text" });
      const [totals] = await sql`
        SELECT count(*)::int AS n, sum(x)::int AS total
        FROM unnest(${[offset + 1, offset + 2, offset + 3]}::bigint[]) AS x
      `;
      assert.deepEqual(totals, { n: 3, total: 3 * offset + 6 });
    }
  });
});

Deno.test("startEmbedded() lets concurrent workers claim disjoint rows with FOR UPDATE SKIP LOCKED", async () => {
  await withDatabase(async (sql) => {
    await sql`CREATE TABLE jobs (id int PRIMARY KEY, claimed_by int)`;
    await sql`INSERT INTO jobs SELECT g, NULL FROM generate_series(1, 8) AS g`;

    const claims = await Promise.all([1, 2, 3, 4].map((worker) =>
      sql.begin(async (tx) => {
        const rows = await tx`
          UPDATE jobs SET claimed_by = ${worker}
          WHERE id IN (
            SELECT id FROM jobs WHERE claimed_by IS NULL ORDER BY id LIMIT 2
            FOR UPDATE SKIP LOCKED
          )
          RETURNING id
        `;
        return rows.map((row) => row.id as number);
      })
    ));

    assert.deepEqual(claims.flat().sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
    for (const claim of claims) assert.equal(claim.length, 2);
  });
});

/** A bare wire-protocol client, to send half a batch and hold it there. */
async function wireClient(url: string) {
  const { hostname, port, password } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const encoder = new TextEncoder();
  let buffered = new Uint8Array(0);
  let closed = false;
  const message = (type: string, ...parts: (string | number[])[]) => {
    const body = parts.flatMap((p) => typeof p === "string" ? [...encoder.encode(p), 0] : p);
    const length = body.length + 4;
    const head = [length >>> 24, (length >>> 16) & 255, (length >>> 8) & 255, length & 255];
    return new Uint8Array([...(type ? [type.charCodeAt(0)] : []), ...head, ...body]);
  };
  const send = async (...messages: Uint8Array[]) => {
    for (const m of messages) await conn.write(m);
  };
  /** Reads messages until one of type `until`; returns the types read and the text they carried. */
  const read = async (until: string) => {
    const types: string[] = [];
    let text = "";
    while (true) {
      while (
        buffered.length < 5 || buffered.length < 1 + new DataView(buffered.buffer).getInt32(1)
      ) {
        const chunk = new Uint8Array(65536);
        const n = await conn.read(chunk);
        if (n === null) throw new Error("The embedded database closed the connection");
        buffered = new Uint8Array([...buffered, ...chunk.subarray(0, n)]);
      }
      const end = 1 + new DataView(buffered.buffer).getInt32(1);
      const type = String.fromCharCode(buffered[0]!);
      types.push(type);
      text += new TextDecoder().decode(buffered.subarray(5, end));
      buffered = buffered.slice(end);
      if (type === until) return { types, text };
    }
  };
  await send(message("", [0, 3, 0, 0], "user", "postgres", "database", "postgres", [0]));
  await read("R");
  await send(message("p", password));
  await read("Z");
  return {
    send,
    read,
    close: () => {
      if (closed) return;
      closed = true;
      conn.close();
    },
    parse: (query: string) => message("P", "", query, [0, 0]),
    bind: () => message("B", "", "", [0, 0, 0, 0, 0, 0]),
    flush: () => message("H"),
    execute: () => message("E", "", [0, 0, 0, 0]),
    sync: () => message("S"),
    query: (query: string) => message("Q", query),
  };
}

Deno.test("startEmbedded() serves one connection's extended-protocol batch whole before another's query", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-embedded-" });
  const db = await startEmbedded({ dataDir });
  const a = await wireClient(db.url);
  const b = await wireClient(db.url);
  try {
    await a.send(a.parse("SELECT 'from a' AS a"), a.bind(), a.flush());
    assert.deepEqual((await a.read("2")).types, ["1", "2"]);
    // B's query would replace A's unnamed portal if it ran now.
    await b.send(b.query("SELECT 'from b' AS b"));
    const answerB = b.read("Z");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const early = await Promise.race([
      answerB.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 300)),
    ]);
    clearTimeout(timer);
    await a.send(a.execute(), a.sync());
    const resultA = await a.read("Z");
    // PGlite reports its parameters ("S") again on every Sync.
    assert.deepEqual(resultA.types.filter((t) => t !== "S"), ["D", "C", "Z"], resultA.text);
    assert.match(resultA.text, /from a/);
    assert.match((await answerB).text, /from b/);
    assert.equal(early, false, "B was answered while A's batch was open");
    // A connection that leaves mid-batch does not keep the others waiting.
    await a.send(a.parse("SELECT 1"), a.bind(), a.flush());
    await a.read("2");
    a.close();
    await b.send(b.query("SELECT 'b again' AS b"));
    assert.match((await b.read("Z")).text, /b again/);
  } finally {
    a.close();
    b.close();
    await db.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
