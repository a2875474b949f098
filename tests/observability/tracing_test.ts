import assert from "node:assert/strict";
import { type TestDatabase, testDatabase } from "../helpers/db.ts";
import { spawnDispatch } from "../helpers/process.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually } from "../helpers/service.ts";

interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: { key: string; value: Record<string, string | number> }[];
}

/** A tiny OTLP/HTTP JSON collector on 127.0.0.1 that keeps every span it is sent. */
function startCollector() {
  const spans: OtlpSpan[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    if (new URL(req.url).pathname === "/v1/traces") {
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
    }
    return Response.json({});
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, spans, close: () => server.shutdown() };
}

/** An attribute's value: OTLP JSON wraps it as stringValue, intValue (a string) or doubleValue. */
const attr = (span: OtlpSpan, key: string) => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (v === undefined) return undefined;
  return "stringValue" in v ? v.stringValue : Number(v.intValue ?? v.doubleValue);
};

/** Dispatch with Deno's OpenTelemetry on, exporting to the collector. */
const spawnTraced = (db: TestDatabase, collector: string) =>
  spawnDispatch(db, {
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "dispatch-test",
    },
  });

Deno.test("with OTEL_DENO=true a delivery is traced in a dispatch.deliver span around its fetch", async () => {
  const db = await testDatabase();
  const collector = startCollector();
  const receiver = startReceiver();
  try {
    const proc = await spawnTraced(db, collector.url);
    const post = (path: string, body: unknown) =>
      fetch(`${proc.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      }).then((r) => r.text());
    await post("/subscriptions", { id: "sub_traced", url: receiver.url });
    await post("/events", { id: "evt_traced", type: "order.created", data: {} });
    const [got] = await receiver.waitFor(1);
    // Exporting happens in batches; a graceful stop flushes whatever is left.
    proc.child.kill("SIGTERM");
    assert.equal(await proc.exited, 0);

    const deliver = await eventually(
      () => Promise.resolve(collector.spans.find((s) => s.name === "dispatch.deliver")),
      { what: "the dispatch.deliver span to arrive" },
    );
    assert.equal(attr(deliver, "dispatch.event.id"), "evt_traced");
    assert.equal(attr(deliver, "dispatch.subscription.id"), "sub_traced");
    assert.equal(attr(deliver, "dispatch.delivery.attempt"), 1);
    assert.equal(attr(deliver, "dispatch.delivery.result"), "success");
    assert.equal(attr(deliver, "http.response.status_code"), 200);
    const fetchSpan = collector.spans.find((s) => s.parentSpanId === deliver.spanId);
    assert.ok(fetchSpan, "the fetch span is a child of dispatch.deliver");
    // Deno propagates the trace to the endpoint.
    assert.match(got!.headers.get("traceparent") ?? "", new RegExp(`^00-${deliver.traceId}-`));
    // The attempt's log line is written inside its span.
    const line = proc.logs.find((l) => l.msg === "Delivery attempt");
    assert.deepEqual([line?.trace_id, line?.span_id], [deliver.traceId, deliver.spanId]);
  } finally {
    await receiver.close();
    await collector.close();
    await db.close();
  }
});

Deno.test("with OTEL_DENO=true a request's log lines carry the trace and span ids of its server span", async () => {
  const db = await testDatabase();
  const collector = startCollector();
  try {
    const proc = await spawnTraced(db, collector.url);
    const res = await fetch(`${proc.url}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "traced-request" },
      body: JSON.stringify({ id: "evt_log_traced", type: "order.created", data: {} }),
    });
    assert.equal(res.status, 201);
    await res.body?.cancel();
    proc.child.kill("SIGTERM");
    assert.equal(await proc.exited, 0);

    const line = proc.logs.find((l) => l.msg === "Request" && l.path === "/events");
    assert.ok(line, "the request was logged");
    assert.equal(line.request_id, "traced-request");
    assert.match(String(line.trace_id), /^[0-9a-f]{32}$/);
    assert.match(String(line.span_id), /^[0-9a-f]{16}$/);
    const span = await eventually(
      () => Promise.resolve(collector.spans.find((s) => s.spanId === line.span_id)),
      { what: "the request's span to arrive" },
    );
    assert.equal(span.traceId, line.trace_id);
    const started = proc.logs.find((l) => l.msg === "Dispatch started");
    assert.equal(started?.trace_id, undefined, "no span is active at start-up");
  } finally {
    await collector.close();
    await db.close();
  }
});
