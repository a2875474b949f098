import assert from "node:assert/strict";
import { serve } from "../../src/http/serve.ts";

const encoder = new TextEncoder();

/** A server whose head timeout is short, answering each request with its method and body. */
async function withServer(fn: (port: number) => Promise<void>) {
  const server = await serve(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 300 },
    async (req) => new Response(`${req.method} ${await req.text()}`),
  );
  try {
    await fn(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

/** Resolves to "closed" once the server hangs up, or "open" if it has not after 10 s. */
async function hangsUp(conn: Deno.Conn): Promise<"closed" | "open"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const read = conn.read(new Uint8Array(1024)).then((n) =>
    n === null ? "closed" as const : "open" as const
  )
    .catch(() => "closed" as const);
  const answer = await Promise.race([
    read,
    new Promise<"open">((resolve) => timer = setTimeout(() => resolve("open"), 10_000)),
  ]);
  clearTimeout(timer);
  conn.close();
  await read;
  return answer;
}

Deno.test("serve() closes a connection that sends part of a request line and stalls, or nothing at all", async () => {
  await withServer(async (port) => {
    for (const partial of ["GET /healthz HT", "GET /healthz HTTP/1.1\r\nhost: x\r\n", ""]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      if (partial) await conn.write(encoder.encode(partial));
      assert.equal(await hangsUp(conn), "closed", JSON.stringify(partial));
    }
  });
});

Deno.test("serve() relays whole requests, keep-alive, chunked and slow bodies alike: only the head is timed", async () => {
  await withServer(async (port) => {
    const url = `http://127.0.0.1:${port}/`;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url, { method: "POST", body: `body ${i}` });
      assert.equal(await res.text(), `POST body ${i}`);
    }
    // A head at once, then its body after longer than the head timeout, in chunks.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(
      "POST / HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n",
    ));
    await new Promise((r) => setTimeout(r, 600));
    await conn.write(encoder.encode("2\r\nde\r\n0\r\n\r\n"));
    const buffer = new Uint8Array(4096);
    let text = "";
    while (!text.includes("POST abcde")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    conn.close();
    assert.match(text, /^HTTP\/1\.1 200 OK/);
    assert.match(text, /POST abcde$/);
  });
});
