import assert from "node:assert/strict";
import { type Phase, RequestFraming } from "../../src/http/request_framing.ts";

/** The phase after each piece, pushed one after another. */
function phases(...pieces: string[]): Phase[] {
  const framing = new RequestFraming();
  return pieces.map((piece) => {
    framing.push(new TextEncoder().encode(piece));
    return framing.phase;
  });
}

Deno.test("RequestFraming finds a head's end across chunks, with CRLF or bare LF", () => {
  assert.deepEqual(phases("GET / HTTP/1.1\r\nhost: a\r", "\n\r", "\n"), [
    "head",
    "head",
    "between",
  ]);
  assert.deepEqual(phases("GET / HTTP/1.1\nhost: a\n\n"), ["between"]);
  assert.deepEqual(phases("\r\n", "GET / HTTP/1.1\r\n\r\n"), ["between", "between"]);
});

Deno.test("RequestFraming skips a Content-Length body and a chunked one, trailers included", () => {
  assert.deepEqual(
    phases("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", "cde", "GET /x HTTP/1.1\r\n"),
    ["body", "between", "head"],
  );
  assert.deepEqual(
    phases(
      "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
      "4;ext=1\r\n\r\n\r\n\r\n",
      "0\r\nx-trailer: 1\r\n",
      "\r\n",
    ),
    ["body", "body", "body", "between"],
  );
});

Deno.test("RequestFraming gives up on HTTP/2 and on a head past any limit", () => {
  assert.deepEqual(phases("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), ["unframed"]);
  assert.deepEqual(phases(`GET / HTTP/1.1\r\nx: ${"a".repeat(90_000)}`), ["unframed"]);
});
