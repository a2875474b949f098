/**
 * What the subscription routes do with `headers`, `filter` and `format`
 * before the engine stores them: the database parses the filter, names go
 * lower-case, sensitive values are sealed.
 *
 * @module
 */
import type { SecretCipher } from "../security/secret_cipher.ts";
import { isSensitiveHeader, MASK } from "../views/custom_headers.ts";
import type { Views } from "../views/views.ts";
import { validationError } from "./error_handler.ts";

/** Refuses a filter with the database's own parse error. */
export function refuseFilter(problem: string): never {
  throw validationError([{
    path: ["filter"],
    message: `is not a valid SQL/JSON path: ${problem}`,
  }], "json");
}

/** Refuses a filter that the database does not parse. */
export async function assertFilterParses(views: Views, filter: string | null): Promise<void> {
  if (filter === null) return;
  const problem = await views.filterProblem(filter);
  if (problem !== null) refuseFilter(problem);
}

/**
 * Headers as stored: names lower-case, sensitive values sealed. A value
 * given as the mask is kept as the mask (the engine keeps the stored value
 * in its place) when `stored` has that name, and refused otherwise.
 */
export async function storableHeaders(
  given: Record<string, string> | null,
  options: { secrets: SecretCipher; stored?: Record<string, string> },
): Promise<Record<string, string>> {
  const entries = await Promise.all(
    Object.entries(given ?? {}).map(async ([name, value]) => {
      const lower = name.toLowerCase();
      if (!isSensitiveHeader(lower)) return [lower, value] as const;
      if (value !== MASK) return [lower, await options.secrets.seal(value)] as const;
      if (options.stored?.[lower] !== undefined) return [lower, value] as const;
      throw validationError([{
        path: ["headers"],
        message: `the value of ${
          JSON.stringify(name)
        } is "${MASK}", which keeps a stored value, and there is none: send the value itself`,
      }], "json");
    }),
  );
  return Object.fromEntries(entries);
}
