import assert from "node:assert/strict";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { isConnectionError, isDataError } from "../../src/db/errors.ts";
import { DatabaseOutage } from "../../src/db/outage.ts";
import { errorResponse } from "../../src/http/error_handler.ts";
import { createLogger, type Logger, silentLogger } from "../../src/observability/log.ts";
import { eventually } from "../helpers/service.ts";

/** An app whose one route fails with what `fail` throws, reporting to `log`. */
function failingApp(options: { log?: Logger; outage: DatabaseOutage }) {
  const log = options.log ?? silentLogger;
  const app = new Hono();
  let next: unknown = null;
  app.onError((e, c) => errorResponse(e, c, { log, outage: options.outage }));
  app.post("/x", () => {
    throw next;
  });
  return {
    async answer(err: unknown) {
      next = err;
      const res = await app.request("/x", { method: "POST" });
      return {
        status: res.status,
        retryAfter: res.headers.get("retry-after"),
        body: await res.json(),
      };
    },
  };
}

/** What the API answers when a route fails with `err`. */
async function answerFor(err: unknown) {
  const outage = new DatabaseOutage(silentLogger, { probe: () => Promise.resolve() });
  try {
    return await failingApp({ outage }).answer(err);
  } finally {
    outage.close();
  }
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
      // The same failures in other words: the code decides, never the message.
      failure("CONNECTION_CLOSED", "write CONNECTION_CLOSED 127.0.0.1:5432"),
      failure("CONNECTION_DESTROYED", "write CONNECTION_DESTROYED 127.0.0.1:5432"),
      failure("CONNECTION_ENDED", "write CONNECTION_ENDED 127.0.0.1:5432"),
      failure("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"),
      failure("57P01", "terminating connection due to idle-session timeout"),
      failure("57P03", "the database system is starting up"),
      failure("08P01", "unexpected EOF on client connection"),
      failure("ERR_SOCKET_CLOSED", "Socket is closed"),
      failure("ENOTCONN", "Broken pipe"),
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

const connectionFailures = [
  failure("CONNECTION_CLOSED", "write CONNECTION_CLOSED 127.0.0.1:5432"),
  failure("57P01", "terminating connection due to administrator command"),
  failure("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"),
  new HTTPException(503, { message: "The database did not answer within 500 ms: retry shortly" }),
];

Deno.test("an unreachable database logs one warn when requests are first refused and one info with their count when it answers again", async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  let reachable = false;
  let probes = 0;
  const outage = new DatabaseOutage(log, {
    probe: () => {
      probes++;
      return reachable ? Promise.resolve() : Promise.reject(new Error("still down"));
    },
    intervalMs: 5,
  });
  const app = failingApp({ log, outage });
  try {
    for (const err of connectionFailures) assert.equal((await app.answer(err)).status, 503);
    // The probe fails twice: still one line, and it is not an error.
    await eventually(() => Promise.resolve(probes >= 2 ? true : undefined));
    assert.deepEqual(lines.map((l) => [l.level, l.msg]), [
      ["warn", "Database unreachable: requests that need it answer 503 until it is back"],
    ]);
    assert.equal(lines[0]!.code, "CONNECTION_CLOSED");
    assert.equal(lines[0]!.path, "/x");
    assert.equal(lines[0]!.stack, undefined);
    reachable = true;
    await eventually(() => Promise.resolve(lines.length === 2 ? true : undefined), {
      what: "the info line",
    });
    assert.deepEqual([lines[1]!.level, lines[1]!.msg, lines[1]!.refused], [
      "info",
      "Database reachable again",
      connectionFailures.length,
    ]);
    // The next outage is reported afresh, and a failure that is ours is still an error.
    reachable = false;
    await app.answer(connectionFailures[0]);
    assert.equal((await app.answer(new Error("bug"))).status, 500);
    assert.deepEqual(lines.slice(2).map((l) => [l.level, l.msg]), [
      ["warn", "Database unreachable: requests that need it answer 503 until it is back"],
      ["error", "Request failed"],
    ]);
  } finally {
    outage.close();
  }
});
