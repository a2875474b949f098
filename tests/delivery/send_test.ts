import assert from "node:assert/strict";
import { type AttemptResult, clip, send, type SendOptions } from "../../src/delivery/send.ts";

type Handler = (request: Request) => Response | Promise<Response>;

function receiver(handler: Handler) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return { server, url: `http://127.0.0.1:${server.addr.port}` };
}

/** send() for an attempt that is made: it never resolves to null here. */
async function sent(req: Parameters<typeof send>[0], options: SendOptions): Promise<AttemptResult> {
  const result = await send(req, options);
  assert.ok(result !== null, "send() resolved to null: nothing was sent");
  return result;
}

const request = (url: string) => ({
  url,
  headers: { "content-type": "application/json", "webhook-id": "msg_1" },
  body: '{"type":"invoice.paid"}',
});

Deno.test("send() POSTs the exact body and headers and reports a 2xx as ok", async () => {
  const received: { method: string; headers: Headers; body: string }[] = [];
  const { server, url } = receiver(async (req) => {
    received.push({ method: req.method, headers: req.headers, body: await req.text() });
    return new Response("accepted", {
      headers: { "content-type": "text/plain", "x-request-id": "abc" },
    });
  });
  try {
    const startedAt = Date.UTC(2026, 0, 1);
    const result = await sent({
      url: `${url}/hooks`,
      headers: {
        "content-type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": "1767225600",
        "webhook-signature": "v1,c2lnbmF0dXJl",
      },
      body: '{"type":"invoice.paid","data":{"amount":42}}',
    }, { timeoutMs: 5_000, now: () => startedAt });

    const { durationMs, ...rest } = result;
    assert.ok(Number.isInteger(durationMs) && durationMs >= 0, `Got ${durationMs}`);
    assert.deepEqual(rest, {
      startedAt: new Date(startedAt),
      statusCode: 200,
      ok: true,
      errorClass: null,
      error: null,
      responseBody: "accepted",
      responseHeaders: { "content-type": "text/plain" },
      retryAfterMs: null,
    });
    assert.equal(received.length, 1);
    const [req] = received;
    assert.equal(req?.method, "POST");
    assert.equal(req?.body, '{"type":"invoice.paid","data":{"amount":42}}');
    assert.equal(req?.headers.get("content-type"), "application/json");
    assert.equal(req?.headers.get("webhook-id"), "msg_1");
    assert.equal(req?.headers.get("webhook-timestamp"), "1767225600");
    assert.equal(req?.headers.get("webhook-signature"), "v1,c2lnbmF0dXJl");
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() reports a 500 and keeps only the first 4096 bytes of its body", async () => {
  const body = Array.from({ length: 10_240 }, (_, i) => String.fromCharCode(97 + i % 26)).join("");
  const { server, url } = receiver(() => new Response(body, { status: 500 }));
  try {
    const result = await sent(request(url), { timeoutMs: 5_000 });

    assert.equal(result.ok, false);
    assert.equal(result.statusCode, 500);
    assert.equal(result.errorClass, "http_status");
    assert.equal(result.error, "Endpoint answered 500");
    assert.equal(result.responseBody, body.slice(0, 4096));
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() leaves out a multi-byte character cut at 4096 bytes", async () => {
  // One ASCII byte, then two-byte characters: byte 4096 is the first half of one.
  const body = `a${"é".repeat(3_000)}`;
  const { server, url } = receiver(() => new Response(body, { status: 400 }));
  try {
    const result = await sent(request(url), { timeoutMs: 5_000 });

    assert.equal(result.responseBody, `a${"é".repeat(2_047)}`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() stops reading an endless response body after 4096 bytes", async () => {
  const chunk = new Uint8Array(1_024).fill(0x7a);
  const { server, url } = receiver(() =>
    new Response(new ReadableStream({ pull: (controller) => controller.enqueue(chunk) }))
  );
  try {
    const result = await sent(request(url), { timeoutMs: 5_000 });

    assert.equal(result.ok, true);
    assert.equal(result.responseBody, "z".repeat(4096));
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() does not follow a 302 redirect", async () => {
  let targetHits = 0;
  const { server, url } = receiver((req) => {
    if (new URL(req.url).pathname === "/target") {
      targetHits++;
      return new Response("followed");
    }
    return new Response(null, { status: 302, headers: { location: "/target" } });
  });
  try {
    const result = await sent(request(url), { timeoutMs: 5_000 });

    assert.equal(result.ok, false);
    assert.equal(result.statusCode, 302);
    assert.equal(result.errorClass, "redirect");
    assert.equal(result.error, 'Redirect to "/target" not followed (status 302)');
    assert.deepEqual(result.responseHeaders, { location: "/target" });
    assert.equal(targetHits, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() times out when the endpoint answers too slowly", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const { server, url } = receiver(async () => {
    await released;
    return new Response("too late");
  });
  try {
    const result = await sent(request(url), { timeoutMs: 200 });

    assert.equal(result.ok, false);
    assert.equal(result.statusCode, null);
    assert.equal(result.errorClass, "timeout");
    assert.equal(result.error, "Timed out after 200 ms");
    assert.equal(result.responseBody, null);
    // Timers may fire a little early, hence the slack.
    assert.ok(result.durationMs >= 150, `Got ${result.durationMs}`);
  } finally {
    release();
    await server.shutdown();
  }
});

Deno.test("send() reports an abort by the caller's signal once the request is on its way", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const controller = new AbortController();
  const { server, url } = receiver(async () => {
    controller.abort();
    await released;
    return new Response("too late");
  });
  try {
    const result = await sent(request(url), { timeoutMs: 5_000, signal: controller.signal });

    assert.equal(result.ok, false);
    assert.equal(result.statusCode, null);
    assert.equal(result.errorClass, "aborted");
    assert.equal(
      result.error,
      "Shutdown cut the attempt off before the endpoint answered; it may have arrived",
    );
  } finally {
    release();
    await server.shutdown();
  }
});

Deno.test("send() reports a refused connection", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();

  const result = await sent(request(`http://127.0.0.1:${port}/`), { timeoutMs: 5_000 });

  assert.equal(result.ok, false);
  assert.equal(result.statusCode, null);
  assert.equal(result.errorClass, "connection_refused");
  assert.equal(result.error, `Connection refused by "127.0.0.1:${port}"`);
});

Deno.test("send() reports a host name that does not resolve", async () => {
  for (const host of ["dispatch-test.invalid", "tls-certificate.dispatch-test.invalid"]) {
    const result = await sent(request(`http://${host}/`), { timeoutMs: 5_000 });

    assert.equal(result.statusCode, null);
    assert.equal(result.errorClass, "dns");
    assert.ok(result.error?.startsWith(`Could not resolve "${host}": `), result.error ?? "null");
  }
});

Deno.test("send() reports a TLS failure when the endpoint does not speak TLS", async () => {
  const { server } = receiver(() => new Response("plain http"));
  try {
    const url = `https://127.0.0.1:${server.addr.port}/`;
    const result = await sent(request(url), { timeoutMs: 5_000 });

    assert.equal(result.statusCode, null);
    assert.equal(result.errorClass, "tls");
    assert.ok(
      result.error?.startsWith(`TLS with "127.0.0.1:${server.addr.port}" failed: `),
      result.error ?? "null",
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() reports a connection closed without an answer", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const connection of listener) connection.close();
  })();
  try {
    const result = await sent(request(`http://127.0.0.1:${listener.addr.port}/`), {
      timeoutMs: 5_000,
    });

    assert.equal(result.statusCode, null);
    assert.equal(result.errorClass, "connection");
    assert.ok(
      result.error?.startsWith(`Request to "127.0.0.1:${listener.addr.port}" failed: `),
      result.error ?? "null",
    );
  } finally {
    listener.close();
    await accepting;
  }
});

Deno.test("send() reads delta-seconds from Retry-After on a 429", async () => {
  const { server, url } = receiver(() =>
    new Response("slow down", { status: 429, headers: { "retry-after": "7" } })
  );
  try {
    const result = await sent(request(url), { timeoutMs: 5_000 });

    assert.equal(result.errorClass, "http_status");
    assert.equal(result.retryAfterMs, 7_000);
    assert.deepEqual(result.responseHeaders, {
      "content-type": "text/plain;charset=UTF-8",
      "retry-after": "7",
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() reads an HTTP date from Retry-After on a 503", async () => {
  const retryAfter = ["Thu, 01 Jan 2026 00:00:30 GMT", "Wed, 31 Dec 2025 23:59:00 GMT"];
  const { server, url } = receiver(() =>
    new Response(null, { status: 503, headers: { "retry-after": retryAfter.shift() ?? "" } })
  );
  try {
    const now = () => Date.UTC(2026, 0, 1);

    assert.equal((await sent(request(url), { timeoutMs: 5_000, now })).retryAfterMs, 30_000);
    // A date in the past means "now", not a negative delay.
    assert.equal((await sent(request(url), { timeoutMs: 5_000, now })).retryAfterMs, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() has no Retry-After delay when the header is absent, invalid or not applicable", async () => {
  const responses = [
    { status: 429, headers: {} },
    { status: 429, headers: { "retry-after": "-5" } },
    { status: 503, headers: { "retry-after": "soon" } },
    { status: 500, headers: { "retry-after": "7" } },
  ];
  const { server, url } = receiver(() => {
    const { status, headers } = responses.shift() ?? { status: 200, headers: {} };
    return new Response(null, { status, headers });
  });
  try {
    for (let i = responses.length; i > 0; i--) {
      assert.equal((await sent(request(url), { timeoutMs: 5_000 })).retryAfterMs, null);
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("send() rejects a timeoutMs that is not a positive integer", async () => {
  for (const timeoutMs of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(send(request("http://127.0.0.1:9/"), { timeoutMs }), {
      name: "RangeError",
      message: `Expected timeoutMs to be a positive integer, got ${timeoutMs}`,
    });
  }
});

Deno.test("send() keeps the status and the body received so far when the body breaks off", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Promises 100 bytes, sends 7, then hangs up.
  const response = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial";
  const accepting = (async () => {
    for await (const connection of listener) {
      await connection.read(new Uint8Array(4_096));
      await connection.write(new TextEncoder().encode(response));
      connection.close();
    }
  })();
  try {
    const result = await sent(request(`http://127.0.0.1:${listener.addr.port}/`), {
      timeoutMs: 5_000,
    });

    assert.equal(result.ok, true);
    assert.equal(result.statusCode, 200);
    assert.equal(result.errorClass, null);
    assert.equal(result.responseBody, "partial");
  } finally {
    listener.close();
    await accepting;
  }
});

Deno.test("send() resolves to null when the caller's signal aborts before anything is sent", async () => {
  const controller = new AbortController();
  let asked = 0;
  const result = await send(request("http://127.0.0.1:9/"), {
    timeoutMs: 5_000,
    signal: controller.signal,
    checkTarget() {
      asked++;
      // Shutdown lands while the target is being checked.
      controller.abort();
      return Promise.resolve({ address: null });
    },
  });
  assert.equal(asked, 1);
  assert.equal(result, null);
});

Deno.test("send() resolves to null when the signal aborted a target check that rejects on abort", async () => {
  const controller = new AbortController();
  const result = await send(request("http://127.0.0.1:9/"), {
    timeoutMs: 5_000,
    signal: controller.signal,
    checkTarget(_url, signal) {
      controller.abort();
      signal.throwIfAborted();
      return Promise.resolve({ address: null });
    },
  });
  assert.equal(result, null);
});

Deno.test("send() stores NUL as \\u0000 and invalid UTF-8 as U+FFFD, in the body and the kept headers", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const head = "HTTP/1.1 500 Oops\r\ncontent-type: text/pl\xffain\r\ncontent-length: 7\r\n\r\n";
  const body = new Uint8Array([0x61, 0x00, 0x62, 0xff, 0xfe, 0xc3, 0x63]);
  const accepting = (async () => {
    for await (const connection of listener) {
      await connection.read(new Uint8Array(4_096));
      await connection.write(Uint8Array.from(head, (c) => c.charCodeAt(0)));
      await connection.write(body);
      connection.close();
    }
  })();
  try {
    const result = await sent(request(`http://127.0.0.1:${listener.addr.port}/`), {
      timeoutMs: 5_000,
    });
    assert.equal(result.statusCode, 500);
    assert.equal(result.responseBody, "a\\u0000b\ufffd\ufffd\ufffdc");
    assert.ok(result.responseHeaders["content-type"]?.isWellFormed());
    assert.ok(!result.responseHeaders["content-type"]?.includes("\0"));
  } finally {
    listener.close();
    await accepting;
  }
});

Deno.test("clip() keeps a text that fits and cuts a longer one between characters, ending in an ellipsis", () => {
  assert.equal(clip("short", 1024), "short");
  assert.equal(clip("é".repeat(512), 1024), "é".repeat(512));
  // 513 two-byte characters: 1021 bytes hold 510 of them and half of the next, which is left out.
  const cut = clip("é".repeat(513), 1024);
  assert.equal(cut, `${"é".repeat(510)}…`);
  assert.equal(new TextEncoder().encode(cut).length, 1023);
  assert.equal(clip("abcdef", 2), "");
});
