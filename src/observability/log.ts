/**
 * Dispatch's logger, on LogTape: one JSON object per line (see `json_line.ts`),
 * with the request id and the active span's trace and span ids as implicit
 * context (see `log_context.ts`).
 *
 * LogTape is configured once per process, here. Each {@linkcode createLogger}
 * call gets a category of its own, `["dispatch", "<n>"]`, and one sink sends
 * every record to its logger's `write`, so that several services in one
 * process (tests) never see each other's lines.
 *
 * @module
 */
import {
  configureSync,
  getConsoleSink,
  getLogger,
  type LogRecord,
  withContext,
} from "@logtape/logtape";
import type { LogLevel } from "../config.ts";
import { jsonLine } from "./json_line.ts";
import { logContext } from "./log_context.ts";

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** LogTape's method for each of our levels. */
const method = { debug: "debug", info: "info", warn: "warning", error: "error" } as const;

interface Destination {
  min: number;
  write(line: string): void;
}

// Held weakly: a logger nobody uses any more takes its entry with it.
const destinations = new Map<string, WeakRef<Destination>>();
const forget = new FinalizationRegistry<string>((id) => destinations.delete(id));
let created = 0;

configureSync({
  sinks: {
    dispatch: (record: LogRecord) => {
      destinations.get(record.category[1] ?? "")?.deref()?.write(jsonLine(record));
    },
    // LogTape's own complaints, such as a `write` that threw.
    stderr: getConsoleSink({ formatter: jsonLine }),
  },
  loggers: [
    { category: ["dispatch"], sinks: ["dispatch"], lowestLevel: "debug" },
    { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
  ],
  contextLocalStorage: logContext,
});

/** A logger that writes lines at `level` and above (default info) to `write` (default stdout). */
export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void } = {},
): Logger {
  const id = String(created++);
  const destination: Destination = {
    min: rank[options.level ?? "info"],
    write: options.write ?? ((line) => console.log(line)),
  };
  destinations.set(id, new WeakRef(destination));
  forget.register(destination, id);
  const logger = getLogger(["dispatch", id]);
  const emit = (level: LogLevel) => (msg: string, fields?: Fields) => {
    if (rank[level] >= destination.min) logger[method[level]](msg, fields);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/**
 * Runs `callback` with `fields` on every line logged until it settles, by any
 * logger, e.g. the request id for all that handling a request logs.
 */
export function withLogContext<T>(fields: Fields, callback: () => T): T {
  return withContext(fields, callback);
}

const quiet = () => {};

/** For tests and tools that want silence. */
export const silentLogger: Logger = { debug: quiet, info: quiet, warn: quiet, error: quiet };
