import assert from "node:assert/strict";
import type { QueueStats } from "../../src/views/stats.ts";
import { createLogger, silentLogger } from "../../src/observability/log.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { sample } from "../helpers/metrics.ts";

const stats: QueueStats = {
  pending: 3,
  retrying: 2,
  processing: 1,
  oldestDueAgeSeconds: 12.5,
  disabledSubscriptions: 4,
  openCircuits: 2,
};

Deno.test("metrics count events, attempts and finished deliveries under Prometheus names", async () => {
  const metrics = createMetrics({
    inFlight: () => 7,
    queueStats: () => Promise.resolve(stats),
    log: silentLogger,
  });
  metrics.eventIngested("order.created");
  metrics.eventIngested("order.created");
  metrics.attemptFinished({ errorClass: null, durationMs: 30 });
  metrics.attemptFinished({ errorClass: "timeout", durationMs: 2000 });
  metrics.deliveryFinished("delivered");
  const text = await metrics.registry.metrics();
  assert.equal(sample(text, 'dispatch_events_ingested_total{type="order.created"}'), 2);
  assert.equal(sample(text, 'dispatch_delivery_attempts_total{result="success"}'), 1);
  assert.equal(sample(text, 'dispatch_delivery_attempts_total{result="timeout"}'), 1);
  assert.equal(sample(text, 'dispatch_deliveries_finished_total{outcome="delivered"}'), 1);
  assert.equal(sample(text, "dispatch_delivery_attempt_duration_seconds_count"), 2);
  assert.equal(sample(text, "dispatch_delivery_attempt_duration_seconds_sum"), 2.03);
  assert.equal(sample(text, 'dispatch_delivery_attempt_duration_seconds_bucket{le="0.05"}'), 1);
  assert.equal(sample(text, "dispatch_deliveries_in_flight"), 7);
  assert.equal(sample(text, 'dispatch_deliveries{status="pending"}'), 3);
  assert.equal(sample(text, 'dispatch_deliveries{status="retrying"}'), 2);
  assert.equal(sample(text, 'dispatch_deliveries{status="processing"}'), 1);
  assert.equal(sample(text, "dispatch_oldest_due_delivery_age_seconds"), 12.5);
  assert.equal(sample(text, "dispatch_subscriptions_disabled"), 4);
  assert.equal(sample(text, "dispatch_circuits_open"), 2);
});

Deno.test("event types past the label cap are counted as other", async () => {
  const metrics = createMetrics({
    inFlight: () => 0,
    queueStats: () => Promise.resolve(stats),
    log: silentLogger,
    maxTypeLabels: 2,
  });
  for (const type of ["a", "b", "c", "d", "a"]) metrics.eventIngested(type);
  const text = await metrics.registry.metrics();
  assert.equal(sample(text, 'dispatch_events_ingested_total{type="a"}'), 2);
  assert.equal(sample(text, 'dispatch_events_ingested_total{type="b"}'), 1);
  assert.equal(sample(text, 'dispatch_events_ingested_total{type="other"}'), 2);
  assert.equal(sample(text, 'dispatch_events_ingested_total{type="c"}'), undefined);
});

Deno.test("queue statistics are read once per scrape and reused within their time to live", async () => {
  let reads = 0;
  const metrics = createMetrics({
    inFlight: () => 0,
    queueStats: () => Promise.resolve({ ...stats, pending: ++reads }),
    log: silentLogger,
    statsTtlMs: 60_000,
  });
  await metrics.registry.metrics();
  const text = await metrics.registry.metrics();
  assert.equal(reads, 1);
  assert.equal(sample(text, 'dispatch_deliveries{status="pending"}'), 1);

  const fresh = createMetrics({
    inFlight: () => 0,
    queueStats: () => Promise.resolve({ ...stats, pending: ++reads }),
    log: silentLogger,
    statsTtlMs: 0,
  });
  await fresh.registry.metrics();
  await fresh.registry.metrics();
  assert.equal(reads, 3);
});

Deno.test("a failed queue read is logged once and the scrape still answers", async () => {
  const lines: string[] = [];
  const metrics = createMetrics({
    inFlight: () => 0,
    queueStats: () => Promise.reject(new Error("connection refused")),
    log: createLogger({ write: (l) => lines.push(l) }),
  });
  metrics.deliveryFinished("failed");
  const text = await metrics.registry.metrics();
  assert.equal(sample(text, 'dispatch_deliveries_finished_total{outcome="failed"}'), 1);
  assert.equal(sample(text, 'dispatch_deliveries{status="pending"}'), undefined);
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]!).msg, "Reading queue metrics failed");
});
