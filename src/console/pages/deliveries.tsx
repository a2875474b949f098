import type { Context } from "hono";
import { z } from "zod";
import { decodeCursor, encodeCursor } from "../../http/cursor.ts";
import { DeliveryFilter } from "../../http/schemas.ts";
import { type DeliveryQuery, statusClasses } from "../../views/deliveries.ts";
import { callApi } from "../api_call.ts";
import { type ConsoleDeps, done, formOf, noticeOf, parseQuery, scopeOf } from "../deps.ts";
import { Page, PostForm, Table, TextFilter, Time } from "../layout.tsx";

const FailedQuery = DeliveryFilter.omit({ status: true }).extend({
  event_type: z.string().min(1).max(255).optional(),
  status_class: z.enum(statusClasses).optional(),
});

const filterFields = [
  "subscription_id",
  "tenant_id",
  "event_type",
  "status_class",
  "since",
  "until",
] as const;

type Filter = Omit<DeliveryQuery, "limit" | "before">;

/** The dead letters the query names, as the views take them. */
async function failedFilter(
  c: Context,
  deps: ConsoleDeps,
  q: z.output<typeof FailedQuery>,
): Promise<Filter> {
  const scope = scopeOf(c, q.tenant_id);
  // An unknown subscription has no deliveries: an empty list, not an error.
  const subscriptionSeq = q.subscription_id === undefined
    ? undefined
    : (await deps.views.subscriptionState(q.subscription_id, scope))?.seq ?? -1;
  return {
    ...scope,
    status: "failed",
    subscriptionSeq,
    since: q.since,
    until: q.until,
    eventType: q.event_type,
    statusClass: q.status_class,
  };
}

/** The filters of the query string, for links and hidden fields. */
function filtersOf(c: Context): Record<string, string> {
  const raw = c.req.query();
  return Object.fromEntries(filterFields.flatMap((f) => raw[f] ? [[f, raw[f]]] : []));
}

export async function failedPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const q = parseQuery(c, FailedQuery);
  const filter = await failedFilter(c, deps, q);
  const { deliveries, next } = await deps.views.listDeliveries({
    ...filter,
    limit: q.limit,
    before: decodeCursor(q.cursor),
  });
  const raw = filtersOf(c);
  const admin = s.principal.tenantId === null;
  const query = new URLSearchParams(raw).toString();
  // A read-only session sees the same list, without the boxes and the button.
  const writable = !s.claims.readOnly;
  const table = (
    <Table
      head={[
        ...(writable
          ? [{
            label: (
              <label>
                <input type="checkbox" data-select-all aria-label="Select all" />
              </label>
            ),
          }]
          : []),
        "Delivery",
        "Event",
        "Subscription",
        "Last answer",
        { label: "Attempts", wide: true },
        "Failed",
      ]}
    >
      {deliveries.map((d) => (
        <tr>
          {writable && (
            <td>
              <input
                type="checkbox"
                name="id"
                value={String(d.id)}
                aria-label={`Select delivery ${d.id}`}
              />
            </td>
          )}
          <td>{d.id}</td>
          <td>
            <a href={`/console/events/${encodeURIComponent(d.event_id)}`}>
              {d.event_id}
            </a>
          </td>
          <td>
            <a href={`/console/subscriptions/${encodeURIComponent(d.subscription_id)}`}>
              {d.subscription_id}
            </a>
          </td>
          <td>{d.last_status_code ?? d.last_error ?? "–"}</td>
          <td class="num hide-narrow">{d.attempts}</td>
          <td>
            <Time at={d.updated_at} />
          </td>
        </tr>
      ))}
    </Table>
  );
  return c.html(
    <Page title="Failed deliveries" s={s} live={q.cursor === undefined} notice={noticeOf(c)}>
      <form class="filters" method="get" action="/console/deliveries">
        <TextFilter label="Subscription" name="subscription_id" query={raw} />
        {admin && <TextFilter label="Tenant" name="tenant_id" query={raw} />}
        <TextFilter label="Event type" name="event_type" query={raw} />
        <label>
          Last answer
          <select name="status_class">
            <option value="">any</option>
            {statusClasses.map((k) => (
              <option value={k} selected={raw.status_class === k}>
                {k === "network" ? "no answer" : k}
              </option>
            ))}
          </select>
        </label>
        <TextFilter label="Since (UTC, ISO 8601)" name="since" query={raw} />
        <TextFilter label="Until" name="until" query={raw} />
        <button type="submit">Filter</button>
        <a href="/console/deliveries">Clear</a>
      </form>
      {deliveries.length === 0 ? <p class="muted">No failed delivery matches.</p> : (
        <>
          {writable && (
            <p class="actions">
              <a href={`/console/deliveries/retry-all${query ? `?${query}` : ""}`}>
                Retry all that match…
              </a>
            </p>
          )}
          {writable
            ? (
              <PostForm s={s} action="/console/deliveries/retry">
                {table}
                <p class="actions">
                  <button type="submit">Retry selected</button>
                </p>
              </PostForm>
            )
            : table}
        </>
      )}
      {next !== null && (
        <p class="pager">
          <a
            href={`/console/deliveries?${new URLSearchParams({
              ...raw,
              cursor: encodeCursor(next)!,
            })}`}
          >
            Older failed deliveries
          </a>
        </p>
      )}
    </Page>,
  );
}

/**
 * "Retry selected": the ticked deliveries back in the queue, with a fresh attempt budget,
 * through `POST /deliveries/retry` as the session (another tenant's are as absent as none).
 */
export async function retrySelected(c: Context, deps: ConsoleDeps) {
  const form = await formOf(c);
  const ids = [form["id"] ?? []].flat().filter((id) => /^[1-9]\d{0,14}$/.test(id)).map(Number);
  if (ids.length === 0) return done(c, "/console/deliveries", "retried", 0);
  const { requeued } = await callApi<{ requeued: number }>(c, deps.api, {
    method: "POST",
    path: "/deliveries/retry",
    body: { status: "failed", delivery_ids: ids.slice(0, 1000) },
  });
  return done(c, "/console/deliveries", "retried", requeued);
}

/** Before retrying all that match: how many that is, and a button. */
export async function retryAllPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const q = parseQuery(c, FailedQuery);
  const count = await deps.views.countDeliveries(await failedFilter(c, deps, q));
  const raw = filtersOf(c);
  const query = new URLSearchParams(raw).toString();
  return c.html(
    <Page title="Retry all that match?" s={s}>
      <p>
        <strong>{count}</strong> failed deliver{count === 1 ? "y matches" : "ies match"}{" "}
        {Object.keys(raw).length === 0
          ? "(no filter: every failed delivery)"
          : Object.entries(raw).map(([k, v]) => `${k}=${v}`).join(", ")}. Each goes back in the
        queue with a fresh attempt budget.
      </p>
      <PostForm
        s={s}
        action={`/console/deliveries/retry-all${query ? `?${query}` : ""}`}
        class="actions"
      >
        <button type="submit" disabled={count === 0}>Retry {count}</button>
        <a href={`/console/deliveries${query ? `?${query}` : ""}`}>Cancel</a>
      </PostForm>
    </Page>,
  );
}

/** "Retry all that match": one `POST /deliveries/retry` with the page's filters, as the session. */
export async function retryAll(c: Context, deps: ConsoleDeps) {
  const q = parseQuery(c, FailedQuery);
  const { requeued } = await callApi<{ requeued: number }>(c, deps.api, {
    method: "POST",
    path: "/deliveries/retry",
    body: {
      status: "failed",
      subscription_id: q.subscription_id,
      tenant_id: q.tenant_id,
      event_type: q.event_type,
      status_class: q.status_class,
      since: q.since?.toISOString(),
      until: q.until?.toISOString(),
    },
  });
  return done(c, "/console/deliveries", "retried", requeued);
}
