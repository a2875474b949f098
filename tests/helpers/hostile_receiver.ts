/**
 * A receiver that answers like a hostile or broken endpoint, speaking raw
 * HTTP over TCP on 127.0.0.1 so it can send what no HTTP library would.
 * The request path picks the behaviour (see {@linkcode hostileBehaviours}).
 */

const encoder = new TextEncoder();
const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const hostileBehaviours = [
  "nul",
  "invalid_utf8",
  "huge_body",
  "trickle_head",
  "trickle_body",
  "huge_headers",
  "reset_mid_body",
  "huge_redirect",
] as const;
export type HostileBehaviour = (typeof hostileBehaviours)[number];

async function respond(conn: Deno.Conn, behaviour: string, closing: AbortSignal): Promise<void> {
  const write = (bytes: Uint8Array) => conn.write(bytes);
  switch (behaviour) {
    case "nul": {
      const body = new Uint8Array([0x6f, 0x00, 0x6b, 0x00]);
      await write(latin1(`HTTP/1.1 500 Bad\r\ncontent-length: ${body.length}\r\n\r\n`));
      return void await write(body);
    }
    case "invalid_utf8": {
      const body = new Uint8Array([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]);
      await write(latin1(`HTTP/1.1 500 Bad\r\ncontent-length: ${body.length}\r\n\r\n`));
      return void await write(body);
    }
    case "huge_body": {
      const size = 10 * 1024 * 1024;
      await write(latin1(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`));
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      // Dispatch reads 4 KiB and hangs up; the rest is written until the socket refuses it.
      for (let sent = 0; sent < size && !closing.aborted; sent += chunk.length) await write(chunk);
      return;
    }
    case "trickle_head":
    case "trickle_body": {
      const head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
      if (behaviour === "trickle_body") await write(latin1(head));
      const slow = behaviour === "trickle_head" ? head : "x".repeat(100);
      for (const c of slow) {
        if (closing.aborted) return;
        await write(latin1(c));
        await sleep(1000);
      }
      return;
    }
    case "huge_headers": {
      // About 100 KB of headers, in 800 lines.
      const lines = Array.from({ length: 800 }, (_, i) => `x-h${i}: ${"v".repeat(120)}\r\n`);
      return void await write(
        latin1(`HTTP/1.1 200 OK\r\n${lines.join("")}content-length: 2\r\n\r\nok`),
      );
    }
    case "huge_redirect": {
      // One 300 KB header and one of 60 KB: under Deno's limits, far over what is worth keeping.
      const location = `https://example.com/${"l".repeat(300_000)}`;
      const type = `text/plain; x=${"t".repeat(60_000)}`;
      return void await write(
        latin1(
          `HTTP/1.1 302 Found\r\nlocation: ${location}\r\ncontent-type: ${type}\r\ncontent-length: 0\r\n\r\n`,
        ),
      );
    }
    case "reset_mid_body": {
      await write(latin1("HTTP/1.1 500 Bad\r\ncontent-length: 1000\r\n\r\npartial"));
      await sleep(50);
      return;
    }
  }
}

export interface HostileReceiver {
  /** `${base}/<behaviour>` for each behaviour. */
  url(behaviour: HostileBehaviour): string;
  /** How many requests each behaviour has had. */
  requests: Map<string, number>;
  close(): Promise<void>;
}

export function startHostileReceiver(): HostileReceiver {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closing = new AbortController();
  const requests = new Map<string, number>();
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const handle = async (conn: Deno.Conn) => {
    open.add(conn);
    try {
      // Read the whole request first, so closing never resets it: Dispatch's bodies are small.
      const buffer = new Uint8Array(64 * 1024);
      let text = "";
      while (!/\r\n\r\n/.test(text) || !bodyComplete(text)) {
        const n = await conn.read(buffer);
        if (n === null) return;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      const behaviour = /^POST \/([a-z_0-9]+)/.exec(text)?.[1] ?? "";
      requests.set(behaviour, (requests.get(behaviour) ?? 0) + 1);
      await respond(conn, behaviour, closing.signal);
    } catch {
      /* Dispatch hung up, as it should */
    } finally {
      open.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const h = handle(conn);
        handlers.add(h);
        h.finally(() => handlers.delete(h));
      }
    } catch { /* closed */ }
  })();
  const base = `http://127.0.0.1:${listener.addr.port}`;
  return {
    url: (behaviour) => `${base}/${behaviour}`,
    requests,
    async close() {
      closing.abort();
      listener.close();
      await accepting;
      for (const c of open) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await Promise.allSettled([...handlers]);
    },
  };
}

function bodyComplete(text: string): boolean {
  const [head = "", body = ""] = text.split("\r\n\r\n", 2);
  const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  return encoder.encode(body).length >= length;
}
