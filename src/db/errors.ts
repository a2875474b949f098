/**
 * What kind of failure a database error is, decided in one place: the HTTP
 * error mapping and the group-commit writers act on the same answer.
 *
 * @module
 */

// Codes that postgres.js and the socket layer give a lost, refused or broken connection.
const connectionCodes = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTCONN",
  "ERR_SOCKET_CLOSED",
  "57P01", // admin_shutdown: the backend was terminated
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: the server is starting or stopping
  "53300", // too_many_connections
]);

function code(err: unknown): string | null {
  const value = (err as { code?: unknown } | null)?.code;
  return typeof value === "string" ? value : null;
}

/** A data exception (SQLSTATE class 22, e.g. "\u0000" in a string): the value itself is wrong. */
export function isDataException(err: unknown): boolean {
  const c = code(err);
  return c !== null && /^22[0-9A-Z]{3}$/.test(c);
}

/**
 * The database refused the data itself (a data exception, or class 23,
 * integrity constraint violation): the same statement will fail again, so
 * the row that causes it must be set apart.
 */
export function isDataError(err: unknown): boolean {
  const c = code(err);
  return isDataException(err) || (c !== null && /^23[0-9A-Z]{3}$/.test(c));
}

/** The connection was lost, refused or broken (class 08 included): retrying later can succeed. */
export function isConnectionError(err: unknown): boolean {
  const c = code(err);
  return c !== null && (connectionCodes.has(c) || /^08[0-9A-Z]{3}$/.test(c));
}

/** PostgreSQL cancelled the statement: `statement_timeout` (57014) or a lock wait (55P03). */
export function isTimeoutError(err: unknown): boolean {
  const c = code(err);
  return c === "57014" || c === "55P03";
}
