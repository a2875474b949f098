/**
 * Fan-out: which active subscriptions an event goes to. Matching is an
 * index probe per event (`subscriptions_match_keys`, migration 0004): an
 * event with tenant T reaches only T's subscriptions, one without a tenant
 * only subscriptions without one, and within those exact types, `*` (not
 * for types that start with `dispatch.`) and the `prefix.*` patterns of
 * the event type's dot-prefixes; then the subscription's payload filter.
 *
 * @module
 */
import type postgres from "postgres";
import type { Sql } from "../db/pool.ts";
import { filterDocument, passesFilter } from "../views/filters.ts";

/**
 * `(event_id, subscription_id, subscription_seq)` for every active
 * subscription each event of `events` matches. `events` is a fragment that
 * names a relation with columns `id`, `type`, `source`, `tenant_id` and
 * `data` (jsonb), e.g. a CTE:
 * `fanOut(sql, sql("input"))`.
 */
export function fanOut(sql: Sql, events: postgres.Fragment | postgres.Helper<string>) {
  return sql`
    SELECT e.id AS event_id, s.id AS subscription_id, s.seq AS subscription_seq
    -- OFFSET 0: the filter's document is built once per event, not once per subscription.
    FROM (SELECT e.*, ${filterDocument(sql, "e")} AS filter_document FROM ${events} e OFFSET 0) e
    JOIN subscriptions s
      ON s.active AND s.match_keys && dispatch_event_keys(e.tenant_id, e.type)
      AND ${passesFilter(sql, sql`e.filter_document`, sql`s.filter_path`)}`;
}
