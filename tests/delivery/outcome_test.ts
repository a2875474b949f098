import assert from "node:assert/strict";
import { verdictOf } from "../../src/delivery/outcome.ts";
import type { AttemptResult } from "../../src/delivery/send.ts";
import { attemptResult } from "../helpers/queue.ts";

const result = attemptResult;

Deno.test("verdictOf counts timeouts, connection errors, 5xx and 429 as the breaker's failures, and nothing of ours", () => {
  const cases: [Partial<AttemptResult>, string | null][] = [
    [{ ok: true, statusCode: 200 }, "success"],
    [{ ok: true, statusCode: 204 }, "success"],
    [{ statusCode: 500, errorClass: "http_status" }, "failure"],
    [{ statusCode: 503, errorClass: "http_status" }, "failure"],
    [{ statusCode: 429, errorClass: "http_status" }, "failure"],
    [{ statusCode: 400, errorClass: "http_status" }, "answer"],
    [{ statusCode: 404, errorClass: "http_status" }, "answer"],
    [{ statusCode: 302, errorClass: "redirect" }, "answer"],
    [{ statusCode: 410, errorClass: "http_status" }, "gone"],
    [{ errorClass: "timeout" }, "failure"],
    [{ errorClass: "connection_refused" }, "failure"],
    [{ errorClass: "connection" }, "failure"],
    [{ errorClass: "dns" }, "failure"],
    [{ errorClass: "tls" }, "failure"],
    // Stopped or refused by Dispatch itself: the endpoint had no say.
    [{ errorClass: "aborted" }, null],
    [{ errorClass: "blocked" }, null],
    [{ errorClass: "secret_unreadable" }, null],
  ];
  for (const [r, verdict] of cases) assert.equal(verdictOf(result(r)), verdict, JSON.stringify(r));
});
