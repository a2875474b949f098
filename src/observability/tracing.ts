/**
 * Spans through `@opentelemetry/api`. With `OTEL_DENO=true`, Deno's built-in
 * OpenTelemetry provides the tracer and exports the spans, and traces
 * `Deno.serve` and `fetch` itself; otherwise the API hands out no-op spans.
 *
 * @module
 */
import { SpanStatusCode, trace } from "@opentelemetry/api";
import type { AttemptResult } from "../delivery/send.ts";
import { VERSION } from "../version.ts";

const tracer = trace.getTracer("dispatch", VERSION);

/** Who a delivery attempt is for, as span attributes. */
export interface DeliveryIdentity {
  event_id: string;
  type: string;
  subscription_id: string;
  attempt: number;
}

/**
 * Runs one delivery attempt in a `dispatch.deliver` span, so the fetch span
 * Deno creates inside it is its child and the trace names the event,
 * subscription and attempt.
 */
export function traceDelivery<R extends AttemptResult | null>(
  delivery: DeliveryIdentity,
  attempt: () => Promise<R>,
): Promise<R> {
  const attributes = {
    "dispatch.event.id": delivery.event_id,
    "dispatch.event.type": delivery.type,
    "dispatch.subscription.id": delivery.subscription_id,
    "dispatch.delivery.attempt": delivery.attempt,
  };
  return tracer.startActiveSpan("dispatch.deliver", { attributes }, async (span) => {
    try {
      const result = await attempt();
      if (result === null) {
        // Shutdown stopped the attempt before anything was sent.
        span.setAttribute("dispatch.delivery.result", "not_sent");
        return result;
      }
      span.setAttribute("dispatch.delivery.result", result.errorClass ?? "success");
      if (result.statusCode !== null) {
        span.setAttribute("http.response.status_code", result.statusCode);
      }
      if (!result.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: result.error ?? "" });
      return result;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
