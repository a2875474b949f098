import assert from "node:assert/strict";
import { Hono } from "hono";
import { isConnectionError, isDataError } from "../../src/db/errors.ts";
import { errorResponse } from "../../src/http/error_handler.ts";
import { silentLogger } from "../../src/observability/log.ts";

/** What the API answers when a route fails with `err`. */
async function answerFor(err: unknown) {
  const app = new Hono();
  app.onError((e, c) => errorResponse(e, c, silentLogger));
  app.get("/x", () => {
    throw err;
  });
  const res = await app.request("/x");
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.json() };
}

const failure = (code: string, message = `failed with ${code}`) =>
  Object.assign(new Error(message), { code });

Deno.test("a broken, lost or refused database connection answers 503 with Retry-After", async () => {
  for (
    const err of [
      failure("EPIPE", "write EPIPE"),
      failure("EPIPE", "This socket has been ended by the other party"),
      failure("ECONNRESET"),
      failure("CONNECTION_CLOSED"),
      failure("CONNECT_TIMEOUT"),
      failure("57P01", "terminating connection due to administrator command"),
      failure("08006", "connection failure"),
      failure("57014", "canceling statement due to statement timeout"),
    ]
  ) {
    const answer = await answerFor(err);
    assert.equal(answer.status, 503, err.message);
    assert.equal(answer.retryAfter, "1", err.message);
    assert.equal(answer.body.error.code, "unavailable");
  }
});

Deno.test("an error that is not the connection's answers 500 without its details", async () => {
  for (const err of [failure("42P01", 'relation "x" does not exist'), new Error("bug")]) {
    const answer = await answerFor(err);
    assert.equal(answer.status, 500);
    assert.equal(answer.body.error.message, "Internal error: the server logged the cause");
  }
});

Deno.test("isDataError is SQLSTATE classes 22 and 23 only", () => {
  for (const code of ["22021", "22P05", "23505", "23514"]) assert.ok(isDataError(failure(code)));
  for (const code of ["42P01", "08006", "57014", "EPIPE", "2200"]) {
    assert.ok(!isDataError(failure(code)), code);
  }
  assert.ok(!isDataError(new Error("no code")));
  assert.ok(!isConnectionError(failure("22021")));
});
