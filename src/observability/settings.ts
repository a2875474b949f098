import { redactUrl } from "../db/pool.ts";

/** Names of settings whose values must never be printed. */
const secretName = /key|secret|password|token|credential/i;

/**
 * Settings as log fields with snake_case names, safe to print: a setting
 * whose name says it is secret shows only how many values it has (a list)
 * or whether it is set, and URLs lose their password. A secret setting
 * added later is hidden without being listed here.
 */
export function loggableSettings(settings: object): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(settings)) {
    const field = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (!secretName.test(name)) fields[field] = loggable(value);
    else if (Array.isArray(value)) fields[`${field}_count`] = value.length;
    else fields[`${field}_set`] = value !== null && value !== undefined && value !== "";
  }
  return fields;
}

function loggable(value: unknown): unknown {
  if (typeof value === "string") return value.includes("://") ? redactUrl(value) : value;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(loggable);
  const proto = Object.getPrototypeOf(value);
  // Plain objects are settings too; anything else (a parsed CIDR range) prints as its text.
  return proto === Object.prototype || proto === null ? loggableSettings(value) : String(value);
}
