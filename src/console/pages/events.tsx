import type { Context } from "hono";
import { eventStatuses } from "../../engine/states.ts";
import { notFound } from "../../errors.ts";
import { decodeCursor, encodeCursor } from "../../http/cursor.ts";
import { EventFilter, id, isoTime } from "../../http/schemas.ts";
import type { EventRow } from "../../views/events.ts";
import { callApi } from "../api_call.ts";
import { curlFor } from "../curl.ts";
import { type ConsoleDeps, done, noticeOf, parseQuery, scopeOf } from "../deps.ts";
import { duration } from "../format.ts";
import { Page, PostForm, Table, TextFilter, Time } from "../layout.tsx";

const time = isoTime.transform((t) => new Date(t));

const EventsQuery = EventFilter.extend({
  id: id("evt_1").optional(),
  since: time.optional(),
  until: time.optional(),
});

/** The page's URL with these filters: every filter is in the URL, so a view is a link. */
function linkTo(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams(
    Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""),
  );
  const text = params.toString();
  return text === "" ? path : `${path}?${text}`;
}

function StatusBadge(props: { status: string }) {
  return <span class={`status status-${props.status}`}>{props.status.replace("_", " ")}</span>;
}

export async function eventsPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const q = parseQuery(c, EventsQuery);
  const scope = scopeOf(c, q.tenant_id);
  let events: EventRow[];
  let next: number | null = null;
  if (q.id !== undefined) {
    const one = await deps.views.getEvent(q.id, scope);
    events = one ? [one] : [];
  } else {
    ({ events, next } = await deps.views.listEvents({
      ...scope,
      limit: q.limit,
      before: decodeCursor(q.cursor),
      type: q.type,
      status: q.status,
      since: q.since,
      until: q.until,
    }));
  }
  const raw = c.req.query();
  const admin = s.principal.tenantId === null;
  return c.html(
    <Page title="Events" s={s} live={q.cursor === undefined}>
      <form class="filters" method="get" action="/console/events">
        <TextFilter label="Type" name="type" query={raw} />
        <label>
          Status
          <select name="status">
            <option value="">any</option>
            {eventStatuses.map((st) => (
              <option value={st} selected={raw.status === st}>{st.replace("_", " ")}</option>
            ))}
          </select>
        </label>
        {admin && <TextFilter label="Tenant" name="tenant_id" query={raw} />}
        <TextFilter label="Event id" name="id" query={raw} />
        <TextFilter
          label="Since (UTC, ISO 8601)"
          name="since"
          query={raw}
          placeholder="2026-12-07T10:00:00Z"
        />
        <TextFilter label="Until" name="until" query={raw} />
        <button type="submit">Filter</button>
        <a href="/console/events">Clear</a>
      </form>
      {events.length === 0 ? <p class="muted">No event matches.</p> : (
        <Table
          head={[
            "Event",
            "Type",
            "Status",
            { label: "Deliveries", wide: true },
            ...(admin ? [{ label: "Tenant", wide: true as const }] : []),
            "Created",
          ]}
        >
          {events.map((e) => (
            <tr>
              <td>
                <a href={`/console/events/${encodeURIComponent(e.id)}`}>{e.id}</a>
              </td>
              <td>{e.type}</td>
              <td>
                <StatusBadge status={e.status} />
              </td>
              <td class="hide-narrow">
                {e.deliveries.delivered}/{e.deliveries.total} delivered
                {e.deliveries.failed > 0 && `, ${e.deliveries.failed} failed`}
              </td>
              {admin && <td class="hide-narrow">{e.tenant_id ?? "–"}</td>}
              <td>
                <Time at={e.created_at} />
              </td>
            </tr>
          ))}
        </Table>
      )}
      {next !== null && (
        <p class="pager">
          <a href={linkTo("/console/events", { ...raw, cursor: encodeCursor(next)! })}>
            Older events
          </a>
        </p>
      )}
    </Page>,
  );
}

/** One event: its payload, and per subscription its delivery with the attempts' timeline. */
export async function eventPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const eventId = c.req.param("id")!;
  const event = await deps.views.getEvent(eventId, scopeOf(c));
  if (!event) throw notFound("event", eventId);
  const [deliveries, attempts] = await Promise.all([
    deps.views.listEventDeliveries(event.id),
    deps.views.listAttempts(event.id),
  ]);
  const subscriptions = new Map(
    await Promise.all(
      [...new Set(deliveries.map((d) => d.subscription_id))].map(async (id) =>
        [id, await deps.views.getSubscription(id)] as const
      ),
    ),
  );
  return c.html(
    <Page title={`Event ${event.id}`} s={s} live notice={noticeOf(c)}>
      <dl class="grid">
        <div class="card">
          <dt class="muted">Type</dt>
          <dd>{event.type}</dd>
        </div>
        <div class="card">
          <dt class="muted">Status</dt>
          <dd>
            <StatusBadge status={event.status} />
          </dd>
        </div>
        <div class="card">
          <dt class="muted">Created</dt>
          <dd>
            <Time at={event.created_at} />
          </dd>
        </div>
        <div class="card">
          <dt class="muted">Tenant, source</dt>
          <dd>{event.tenant_id ?? "–"}, {event.source ?? "–"}</dd>
        </div>
      </dl>
      {event.deliveries.failed > 0 && (
        <PostForm
          s={s}
          action={`/console/events/${encodeURIComponent(event.id)}/retry`}
          class="actions"
        >
          <button type="submit">Retry failed deliveries</button>
        </PostForm>
      )}
      <h2>Payload</h2>
      <pre>{JSON.stringify(event.data, null, 2)}</pre>
      <h2>Deliveries</h2>
      {deliveries.length === 0 && <p class="muted">No subscription matched this event.</p>}
      {deliveries.map((d) => {
        const sub = subscriptions.get(d.subscription_id);
        const mine = attempts.filter((a) => a.subscription_id === d.subscription_id);
        return (
          <section class="card delivery" aria-label={`Delivery to ${d.subscription_id}`}>
            <h3>
              <a href={`/console/subscriptions/${encodeURIComponent(d.subscription_id)}`}>
                {d.subscription_id}
              </a>{" "}
              <StatusBadge status={d.status} />
            </h3>
            <p class="muted">
              {sub?.url ?? "subscription deleted"} · {d.attempts}{" "}
              attempt{d.attempts === 1 ? "" : "s"}
              {d.next_attempt_at && (
                <>
                  {" "}· next attempt <Time at={d.next_attempt_at} />
                </>
              )}
              {d.held_by && ` · held by ${d.held_by.replaceAll("_", " ")}`}
            </p>
            {mine.length > 0 && (
              <ol class="timeline">
                {mine.map((a) => (
                  <li class={a.error_class === null ? "ok" : "bad"}>
                    <Time at={a.started_at} /> · attempt {a.attempt} ·{" "}
                    <strong>{a.status_code ?? a.error_class}</strong> · {duration(a.duration_ms)}
                    {a.error && <div>{a.error}</div>}
                    {a.response_body && (
                      <details>
                        <summary>Response ({a.response_body.length} bytes kept)</summary>
                        <pre>{a.response_body.slice(0, 1024)}</pre>
                      </details>
                    )}
                    {sub && (
                      <details>
                        <summary>Copy as curl</summary>
                        <pre id={`curl-${a.id}`}>
                          {curlFor({
                            url: sub.url,
                            eventId: event.id,
                            type: event.type,
                            source: event.source,
                            createdAt: event.created_at,
                          }, event.data)}
                        </pre>
                        <button type="button" class="secondary" data-copy={`curl-${a.id}`}>
                          Copy
                        </button>
                      </details>
                    )}
                  </li>
                ))}
              </ol>
            )}
          </section>
        );
      })}
    </Page>,
  );
}

/** "Retry failed deliveries": every failed delivery of the event back in the queue. */
export async function retryEvent(c: Context, deps: ConsoleDeps) {
  const eventId = c.req.param("id")!;
  const event = await deps.views.getEvent(eventId, scopeOf(c));
  if (!event) throw notFound("event", eventId);
  const result = await callApi<{ requeued: string[] }>(c, deps.api, {
    method: "POST",
    path: `/events/${encodeURIComponent(event.id)}/retry`,
  });
  return done(
    c,
    `/console/events/${encodeURIComponent(event.id)}`,
    "retried",
    result.requeued.length,
  );
}
