/**
 * The implicit context of log lines, for LogTape's `contextLocalStorage`:
 * what `withContext` set for the current async call chain (the request id),
 * plus the trace and span ids of the active OpenTelemetry span, read for
 * each line.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { ContextLocalStorage } from "@logtape/logtape";
import { trace } from "@opentelemetry/api";

type Context = Record<string, unknown>;

const storage = new AsyncLocalStorage<Context>();

export const logContext: ContextLocalStorage<Context> = {
  run: (store, callback) => storage.run(store, callback),
  getStore() {
    const store = storage.getStore();
    // Without OTEL_DENO no span is ever active.
    const span = trace.getActiveSpan()?.spanContext();
    return span === undefined ? store : { ...store, trace_id: span.traceId, span_id: span.spanId };
  },
};
