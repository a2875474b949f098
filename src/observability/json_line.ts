/**
 * A LogTape record as one JSON line: `time`, `level`, `msg`, then the fields.
 *
 * @module
 */
import type { LogRecord } from "@logtape/logtape";

/** The line's own keys; a field with one of these names is written as `field_<name>`. */
const ownKeys = new Set(["time", "level", "msg"]);

/** Our level names for LogTape's. */
const levelNames: Partial<Record<LogRecord["level"], string>> = { warning: "warn" };

/**
 * The record as a JSON object on one line. Errors keep their name, message,
 * stack, cause and (PostgreSQL's, Deno's, …) code; BigInts are written as
 * decimal strings; a value inside itself is written as `"[Circular]"`.
 */
export function jsonLine(record: LogRecord): string {
  const line: Record<string, unknown> = {
    time: new Date(record.timestamp).toISOString(),
    level: levelNames[record.level] ?? record.level,
    // The message is not a template here: braces in it are text.
    msg: String(record.rawMessage),
  };
  for (const [key, value] of Object.entries(record.properties)) {
    line[ownKeys.has(key) ? `field_${key}` : key] = loggable(value, []);
  }
  return JSON.stringify(line);
}

/** `value` as JSON.stringify can always write it; `ancestors` are the objects it is inside. */
function loggable(value: unknown, ancestors: readonly object[]): unknown {
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object" || value === null) return value;
  if (ancestors.includes(value)) return "[Circular]";
  const inside = [...ancestors, value];
  if (value instanceof Error) return errorFields(value, inside);
  if ("toJSON" in value && typeof value.toJSON === "function") {
    return loggable(value.toJSON(), inside);
  }
  if (Array.isArray(value)) return value.map((v) => loggable(v, inside));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, loggable(v, inside)]));
}

/**
 * What an error says about itself. Other own properties are left out on
 * purpose: a database error can carry the query's parameters.
 */
function errorFields(error: Error, inside: readonly object[]): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  if (error.stack !== undefined) fields.stack = error.stack;
  if (error.cause !== undefined) fields.cause = loggable(error.cause, inside);
  const { code } = error as { code?: unknown };
  if (typeof code === "string" || typeof code === "number") fields.code = code;
  return fields;
}
