/**
 * The pure half of the health write: what a batch of outcomes says about
 * each subscription's endpoint, and the event that announces a change.
 */
import assert from "node:assert/strict";
import type { Completion, Verdict } from "../../src/db/queue.ts";
import {
  emptyReport,
  type HealthChange,
  operationalEvent,
} from "../../src/db/subscription_health.ts";
import { healthReports } from "../../src/worker/completer.ts";
import { outcome } from "../helpers/queue.ts";

let nextId = 1;

/** An outcome of subscription `seq` that the breaker reads as `verdict`. */
function said(seq: number | null, verdict: Verdict | null, lastError: string | null = null) {
  const id = nextId++;
  const d = {
    id,
    event_id: `e${id}`,
    attempt: 1,
    subscription_seq: seq,
    subscription_id: `s${seq}`,
  };
  const status: Completion["status"] = verdict === "success" ? "delivered" : "retrying";
  return outcome(d, status, { verdict, lastError });
}

Deno.test("healthReports: an empty batch, or one of outcomes with no verdict, reports nothing", () => {
  assert.deepEqual(healthReports([]), []);
  assert.deepEqual(healthReports([said(1, null), said(null, "failure")]), []);
});

Deno.test("healthReports: one report per subscription, in the order each first appears", () => {
  const reports = healthReports([said(2, "success"), said(1, "failure"), said(2, "success")]);
  assert.deepEqual(reports.map((r) => r.seq), [2, 1]);
});

Deno.test("healthReports: failures only count, and keep the last error", () => {
  const [r] = healthReports([
    said(1, "failure", "Endpoint answered 500"),
    said(1, "failure", "Timed out"),
  ]);
  assert.deepEqual(r, {
    ...emptyReport(1),
    failures: 2,
    failuresSinceSuccess: 2,
    failedSinceSuccess: true,
    lastError: "Timed out",
  });
});

Deno.test("healthReports: a success resets what came before it in the batch, not what came after", () => {
  const [before] = healthReports([said(1, "failure", "a"), said(1, "success")]);
  assert.deepEqual(before, {
    ...emptyReport(1),
    success: true,
    answered: true,
    failures: 1,
    failuresSinceSuccess: 0,
    failedSinceSuccess: false,
    lastError: "a",
  });
  const [after] = healthReports([
    said(1, "success"),
    said(1, "failure", "b"),
    said(1, "failure", "c"),
  ]);
  assert.deepEqual(after, {
    ...emptyReport(1),
    success: true,
    answered: true,
    failures: 2,
    failuresSinceSuccess: 2,
    failedSinceSuccess: true,
    lastError: "c",
  });
});

Deno.test("healthReports: another answer (a 4xx) closes a circuit but is no breaker failure, and no success", () => {
  const [r] = healthReports([said(1, "answer", "Endpoint answered 400")]);
  assert.deepEqual(r, {
    ...emptyReport(1),
    answered: true,
    failedSinceSuccess: true,
    lastError: "Endpoint answered 400",
  });
});

Deno.test("healthReports: 410 Gone is reported as gone, neither an answer nor a failure", () => {
  const [r] = healthReports([said(1, "gone", "Endpoint answered 410 Gone")]);
  assert.deepEqual(r, {
    ...emptyReport(1),
    gone: true,
    failedSinceSuccess: true,
    lastError: "Endpoint answered 410 Gone",
  });
});

Deno.test("emptyReport: nothing said yet", () => {
  assert.deepEqual(emptyReport(9), {
    seq: 9,
    success: false,
    answered: false,
    failures: 0,
    failuresSinceSuccess: 0,
    failedSinceSuccess: false,
    gone: false,
    lastError: null,
  });
});

Deno.test("operationalEvent: dispatch.subscription.<kind> from source dispatch, for the operator, naming the subscription's tenant in its data", () => {
  const change: HealthChange = {
    kind: "disabled",
    seq: 4,
    subscriptionId: "sub_4",
    tenantId: "acme",
    reason: "gone",
    lastError: "Endpoint answered 410 Gone",
    at: new Date("2026-01-02T03:04:05.000Z"),
    nextProbeAt: null,
  };
  const event = operationalEvent(change);
  assert.match(event.id, /^evt_/);
  assert.deepEqual({ ...event, id: "" }, {
    id: "",
    type: "dispatch.subscription.disabled",
    source: "dispatch",
    tenant_id: null,
    data: {
      subscription_id: "sub_4",
      tenant_id: "acme",
      reason: "gone",
      last_error: "Endpoint answered 410 Gone",
      at: "2026-01-02T03:04:05.000Z",
    },
  });
  assert.notEqual(operationalEvent(change).id, event.id);
});
