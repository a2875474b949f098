import type { Context } from "hono";
import type { z } from "zod";
import type { AppDeps } from "../http/deps.ts";
import { validationError } from "../http/error_handler.ts";
import type { TenantFilter } from "../views/tenant_filter.ts";
import type { ApiFetch } from "./api_call.ts";

/** What the pages need: the views to read, and the API's routes to act (validated and audited). */
export interface ConsoleDeps extends Pick<AppDeps, "views" | "log"> {
  api: ApiFetch;
}

/** The session's tenant filter: a tenant's session sees only its tenant, an admin's what it asks. */
export function scopeOf(c: Context, requested?: string): TenantFilter {
  const own = c.get("console").principal.tenantId;
  return { tenantId: own ?? requested };
}

/**
 * A page's query, by schema; empty fields (a form's blank inputs) are left
 * out. Bad input answers 400 naming the field, as the API does.
 */
export function parseQuery<T extends z.ZodType>(c: Context, schema: T): z.output<T> {
  const given = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ""));
  const result = schema.safeParse(given);
  if (!result.success) throw validationError(result.error.issues, "query");
  return result.data;
}

/** A form's fields as strings (repeated fields as lists), blank ones left out. */
export async function formOf(c: Context): Promise<Record<string, string | string[]>> {
  const body = await c.req.parseBody({ all: true });
  const fields: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(body)) {
    if (name === "_csrf") continue;
    const values = (Array.isArray(value) ? value : [value])
      .filter((v): v is string => typeof v === "string" && v.trim() !== "");
    if (values.length > 0) fields[name] = values.length === 1 ? values[0]! : values;
  }
  return fields;
}

/** What an action did, as the page it leads back to says it; `n` is a count. */
const notices = {
  retried: (n: number) => `${n} failed deliveries put back in the queue`,
  created: () => "Subscription created",
  updated: () => "Subscription saved",
  deleted: () => "Subscription deleted",
  tested: () => "Test event sent: it appears among the events",
  recovered: (n: number) => `${n} failed deliveries put back in the queue`,
};

/**
 * After an action, back to a page (303, so a reload does not repeat it),
 * which says what was done: a fixed sentence, never text from the URL.
 */
export function done(c: Context, path: string, what: keyof typeof notices, n = 0): Response {
  return c.redirect(`${path}?done=${what}&n=${n}`, 303);
}

export function noticeOf(c: Context): string | undefined {
  const what = c.req.query("done");
  if (what === undefined || !Object.hasOwn(notices, what)) return undefined;
  const n = Number(c.req.query("n"));
  return notices[what as keyof typeof notices](Number.isSafeInteger(n) ? n : 0);
}
