/**
 * A subscription's custom headers: which names are sensitive (masked in
 * every representation, sealed at rest) and how a read shows them. The
 * one place the rule is written: validation, the views' SQL and the worker
 * all take it from here.
 *
 * @module
 */

/** What every representation shows for a sensitive header's value. */
export const MASK = "***";

const sensitiveNames = ["authorization", "proxy-authorization", "cookie"];
const sensitiveParts = ["token", "secret", "key", "password", "auth"];

/** The rule as a PostgreSQL regular expression, for reads that mask in SQL. */
const sensitivePattern = `^(${sensitiveNames.join("|")})$|${sensitiveParts.join("|")}`;
const sensitive = new RegExp(sensitivePattern);

/** Whether a (lower-case) header name holds a value that is masked and sealed. */
export function isSensitiveHeader(name: string): boolean {
  return sensitive.test(name);
}

/** Whether the headers set `authorization`, which another way of authenticating would clash with. */
export function hasAuthorizationHeader(
  headers: Record<string, string> | null | undefined,
): boolean {
  return headers != null && Object.keys(headers).some((n) => n.toLowerCase() === "authorization");
}

/** The `headers` column as reads show it: sensitive values as {@linkcode MASK}. */
export const maskedHeadersColumn = `(SELECT coalesce(jsonb_object_agg(h.key,
    CASE WHEN h.key ~ '${sensitivePattern}' THEN '"${MASK}"'::jsonb ELSE h.value END), '{}')
  FROM jsonb_each(headers) h) AS headers`;
