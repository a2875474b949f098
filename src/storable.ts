/**
 * What PostgreSQL stores exactly as sent. Its text cannot hold NUL, and a
 * string with an unpaired UTF-16 surrogate would be stored with U+FFFD in
 * its place (text) or refused (jsonb); deeply nested jsonb exhausts the
 * server's stack. Requests are checked against these rules up front, so
 * such input is a 400 naming the field rather than a silent change or a 5xx.
 *
 * @module
 */

export const MAX_JSON_DEPTH = 32;

export const unstorableText = "must not contain NUL characters or unpaired UTF-16 surrogates";

/** Whether PostgreSQL stores the string exactly as given. */
export function isStorable(text: string): boolean {
  return !text.includes("\0") && text.isWellFormed();
}

/**
 * Text from outside that must be stored whatever it holds (what a receiver
 * answered): NUL becomes the six characters `\u0000`, an unpaired surrogate
 * becomes U+FFFD. Decode bytes with a non-fatal UTF-8 decoder first, which
 * turns invalid sequences into U+FFFD.
 */
export function toStorable(text: string): string {
  return text.replaceAll("\0", "\\u0000").toWellFormed();
}

export interface JsonProblem {
  /** Keys and indexes from the value's root to the offending part. */
  path: (string | number)[];
  message: string;
}

/**
 * The first part of a JSON value that jsonb would not store as sent: a
 * string or key that is not storable, a number that is not finite (JSON.parse
 * turns 1e400 into Infinity, which would be stored as null), or nesting
 * deeper than `maxDepth` containers. Null when there is none.
 */
export function jsonProblem(value: unknown, maxDepth = MAX_JSON_DEPTH): JsonProblem | null {
  const path: (string | number)[] = [];
  // Recursion is bounded by maxDepth: deeper values are refused before they are walked.
  const walk = (v: unknown, depth: number): string | null => {
    if (typeof v === "string") return isStorable(v) ? null : unstorableText;
    if (typeof v === "number") return Number.isFinite(v) ? null : "must be a finite number";
    if (v === null || typeof v !== "object") return null;
    if (depth > maxDepth) {
      path.length = 0;
      return `must not nest objects and arrays more than ${maxDepth} deep`;
    }
    const entries: [string | number, unknown][] = Array.isArray(v)
      ? [...v.entries()]
      : Object.entries(v);
    for (const [key, child] of entries) {
      if (typeof key === "string" && !isStorable(key)) return `keys ${unstorableText}`;
      path.push(key);
      const why = walk(child, depth + 1);
      if (why !== null) return why;
      path.pop();
    }
    return null;
  };
  const message = walk(value, 1);
  return message === null ? null : { path, message };
}
