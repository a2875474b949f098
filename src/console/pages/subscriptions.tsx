import type { Context } from "hono";
import { notFound } from "../../errors.ts";
import { decodeCursor, encodeCursor } from "../../http/cursor.ts";
import { Page as PageQuery, statsWindows } from "../../http/schemas.ts";
import type { SubscriptionRow } from "../../views/subscriptions.ts";
import { callApi } from "../api_call.ts";
import { Sparkline } from "../charts.tsx";
import { type ConsoleDeps, done, formOf, noticeOf, parseQuery, scopeOf } from "../deps.ts";
import { duration, percent } from "../format.ts";
import type { ConsoleSession } from "../guard.ts";
import { Page, PostForm, Table, Time } from "../layout.tsx";

const DAY = statsWindows["24h"];
const path = (id: string) => `/console/subscriptions/${encodeURIComponent(id)}`;

/** Subscriptions with their last 24 h: success rate, latency, attempts per hour, in flight. */
export async function subscriptionsPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const q = parseQuery(c, PageQuery);
  const { subscriptions, next } = await deps.views.listSubscriptions({
    ...scopeOf(c),
    limit: q.limit,
    after: decodeCursor(q.cursor),
  });
  const since = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 23 * 3_600_000);
  const activity = await deps.views.subscriptionActivity(subscriptions.map((sub) => sub.id), {
    since,
    hours: 24,
  });
  const stats = new Map(
    await Promise.all(subscriptions.map(async (sub) => {
      const seq = activity.get(sub.id)?.seq;
      return [
        sub.id,
        seq === undefined ? null : await deps.views.subscriptionStats(seq, DAY),
      ] as const;
    })),
  );
  return c.html(
    <Page title="Subscriptions" s={s} live={q.cursor === undefined} notice={noticeOf(c)}>
      {!s.claims.readOnly && (
        <p class="actions">
          <a href="/console/subscriptions/new">New subscription</a>
        </p>
      )}
      {subscriptions.length === 0 ? <p class="muted">No subscription yet.</p> : (
        <Table
          head={[
            "Subscription",
            "State",
            "Circuit",
            "Success 24 h",
            { label: "p50 / p95", wide: true },
            { label: "Attempts per hour", wide: true },
            { label: "In flight", wide: true },
            "Last error or reason",
          ]}
        >
          {subscriptions.map((sub) => {
            const figures = stats.get(sub.id);
            const act = activity.get(sub.id);
            return (
              <tr>
                <td>
                  <a href={path(sub.id)}>{sub.id}</a>
                  <div class="muted">{sub.url}</div>
                </td>
                <td>
                  <span class={`status status-${sub.active ? "active" : "disabled"}`}>
                    {sub.active ? "active" : "disabled"}
                  </span>
                </td>
                <td>
                  <span class={`status status-${sub.circuit.state}`}>
                    {sub.circuit.state}
                  </span>
                </td>
                <td class="num">{percent(figures?.success_rate ?? null)}</td>
                <td class="num hide-narrow">
                  {duration(figures?.latency_ms.p50 ?? null)} /{" "}
                  {duration(figures?.latency_ms.p95 ?? null)}
                </td>
                <td class="hide-narrow">{act && <Sparkline hourly={act.hourly} />}</td>
                <td class="num hide-narrow">
                  {act?.in_flight ?? 0} / {sub.max_in_flight ?? "∞"}
                </td>
                <td>
                  {sub.active
                    ? act?.last_error ?? ""
                    : `disabled: ${sub.disabled_reason ?? "by hand"}`}
                </td>
              </tr>
            );
          })}
        </Table>
      )}
      {next !== null && (
        <p class="pager">
          <a href={`/console/subscriptions?cursor=${encodeCursor(next)}`}>More subscriptions</a>
        </p>
      )}
    </Page>,
  );
}

/** The fields of a subscription's form, filled from `sub` when editing. */
function Fields(props: { sub?: SubscriptionRow; tenant: boolean }) {
  const { sub } = props;
  return (
    <>
      <label>
        URL<input type="url" name="url" required value={sub?.url ?? ""} />
      </label>
      <label>
        Event types (comma-separated; * for all)
        <input type="text" name="event_types" value={sub?.event_types.join(", ") ?? "*"} />
      </label>
      <label>
        Description<input type="text" name="description" value={sub?.description ?? ""} />
      </label>
      {props.tenant && (
        <label>
          Tenant (optional)<input type="text" name="tenant_id" />
        </label>
      )}
      <label>
        Max attempts (blank: the default)
        <input
          type="number"
          name="max_attempts"
          min="1"
          max="100"
          value={sub?.max_attempts ?? ""}
        />
      </label>
      <label>
        Rate limit, deliveries per second (blank: none)
        <input type="number" name="rate_limit" min="1" value={sub?.rate_limit ?? ""} />
      </label>
      <label>
        Max in flight (blank: none)
        <input type="number" name="max_in_flight" min="1" value={sub?.max_in_flight ?? ""} />
      </label>
      <label>
        <span>
          <input
            type="checkbox"
            name="active"
            value="true"
            checked={sub?.active ?? true /* new: on */}
          />{" "}
          Active
        </span>
      </label>
    </>
  );
}

/**
 * A form's fields as the API's body: numbers as numbers (a blank limit is
 * null, no override), anything unreadable passed on for the API to name.
 */
function bodyOf(form: Record<string, string | string[]>, editing: boolean) {
  const text = (name: string) => typeof form[name] === "string" ? form[name] as string : undefined;
  const number = (name: string) => {
    const value = text(name);
    if (value === undefined) return editing ? null : undefined;
    return /^\d+$/.test(value) ? Number(value) : value;
  };
  const types = text("event_types")?.split(/[\s,]+/).filter(Boolean);
  return Object.fromEntries(
    Object.entries({
      url: text("url"),
      event_types: types,
      description: text("description") ?? (editing ? null : undefined),
      tenant_id: editing ? undefined : text("tenant_id"),
      active: form["active"] === "true",
      max_attempts: number("max_attempts"),
      rate_limit: number("rate_limit"),
      max_in_flight: number("max_in_flight"),
    }).filter(([, v]) => v !== undefined),
  );
}

export function newSubscriptionPage(c: Context) {
  const s = c.get("console");
  return c.html(
    <Page title="New subscription" s={s}>
      <PostForm s={s} action="/console/subscriptions" class="stack">
        <Fields tenant={s.principal.tenantId === null} />
        <button type="submit">Create</button>
      </PostForm>
    </Page>,
  );
}

/** A secret shown once: the page that shows it is not kept by the browser. */
function SecretOnce(
  props: { title: string; id: string; secret: string; s: ConsoleSession },
) {
  return (
    <Page title={props.title} s={props.s}>
      <p>Copy the signing secret now: it is not shown again.</p>
      <p class="secret" id="secret">{props.secret}</p>
      <p class="actions">
        <button type="button" class="secondary" data-copy="secret">Copy</button>
        <a href={path(props.id)}>Back to the subscription</a>
      </p>
    </Page>
  );
}

export async function createSubscription(c: Context, deps: ConsoleDeps) {
  const created = await callApi<SubscriptionRow & { secret: string }>(c, deps.api, {
    method: "POST",
    path: "/subscriptions",
    body: bodyOf(await formOf(c), false),
  });
  c.header("Cache-Control", "no-store");
  return c.html(
    <SecretOnce
      title="Subscription created"
      id={created.id}
      secret={created.secret}
      s={c.get("console")}
    />,
    201,
  );
}

export async function subscriptionPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const id = c.req.param("id")!;
  const sub = await deps.views.getSubscription(id, scopeOf(c));
  if (!sub) throw notFound("subscription", id);
  const anHourAgo = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, "Z");
  return c.html(
    <Page title={`Subscription ${sub.id}`} s={s} notice={noticeOf(c)}>
      <p>
        <span class={`status status-${sub.active ? "active" : "disabled"}`}>
          {sub.active ? "active" : `disabled: ${sub.disabled_reason ?? "by hand"}`}
        </span>{" "}
        circuit <span class={`status status-${sub.circuit.state}`}>{sub.circuit.state}</span>{" "}
        · tenant {sub.tenant_id ?? "–"} · created <Time at={sub.created_at} />
      </p>
      <p>
        <a href={`/console/deliveries?subscription_id=${encodeURIComponent(sub.id)}`}>
          Its failed deliveries
        </a>
      </p>
      {s.claims.readOnly
        ? (
          <dl>
            <dt>URL</dt>
            <dd>{sub.url}</dd>
            <dt>Event types</dt>
            <dd>{sub.event_types.join(", ")}</dd>
            <dt>Limits</dt>
            <dd>
              max attempts {sub.max_attempts ?? "default"}, rate{" "}
              {sub.rate_limit ?? "none"}, in flight {sub.max_in_flight ?? "no limit"}
            </dd>
          </dl>
        )
        : (
          <>
            <h2>Edit</h2>
            <PostForm s={s} action={path(sub.id)} class="stack">
              <Fields sub={sub} tenant={false} />
              <button type="submit">Save</button>
            </PostForm>
            <h2>Actions</h2>
            <div class="actions">
              <PostForm s={s} action={`${path(sub.id)}/test`} class="inline">
                <button type="submit" class="secondary">Send a test event</button>
              </PostForm>
              <PostForm s={s} action={`${path(sub.id)}/rotate-secret`} class="inline">
                <button type="submit" class="secondary">Rotate the secret</button>
              </PostForm>
              <a href={`${path(sub.id)}/delete`}>Delete…</a>
            </div>
            <PostForm s={s} action={`${path(sub.id)}/recover`} class="filters">
              <label>
                Recover failed deliveries since (UTC, ISO 8601)
                <input type="text" name="since" value={anHourAgo} required />
              </label>
              <button type="submit" class="secondary">Recover</button>
            </PostForm>
          </>
        )}
    </Page>,
  );
}

export async function updateSubscription(c: Context, deps: ConsoleDeps) {
  const id = c.req.param("id")!;
  await callApi(c, deps.api, {
    method: "PATCH",
    path: `/subscriptions/${encodeURIComponent(id)}`,
    body: bodyOf(await formOf(c), true),
  });
  return done(c, path(id), "updated");
}

export async function deleteSubscriptionPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const id = c.req.param("id")!;
  const sub = await deps.views.getSubscription(id, scopeOf(c));
  if (!sub) throw notFound("subscription", id);
  return c.html(
    <Page title={`Delete ${sub.id}?`} s={s}>
      <p>
        Its waiting deliveries fail and are not attempted again; its events stay. This cannot be
        undone.
      </p>
      <PostForm s={s} action={`${path(sub.id)}/delete`} class="actions">
        <button type="submit" class="danger">Delete {sub.id}</button>
        <a href={path(sub.id)}>Cancel</a>
      </PostForm>
    </Page>,
  );
}

export async function deleteSubscription(c: Context, deps: ConsoleDeps) {
  const id = c.req.param("id")!;
  await callApi(c, deps.api, {
    method: "DELETE",
    path: `/subscriptions/${encodeURIComponent(id)}`,
  });
  return done(c, "/console/subscriptions", "deleted");
}

export async function rotateSecret(c: Context, deps: ConsoleDeps) {
  const id = c.req.param("id")!;
  const rotated = await callApi<{ secret: string }>(c, deps.api, {
    method: "POST",
    path: `/subscriptions/${encodeURIComponent(id)}/rotate-secret`,
  });
  c.header("Cache-Control", "no-store");
  return c.html(
    <SecretOnce title="New signing secret" id={id} secret={rotated.secret} s={c.get("console")} />,
  );
}

export async function testSubscription(c: Context, deps: ConsoleDeps) {
  const id = c.req.param("id")!;
  const sent = await callApi<{ event_id: string }>(c, deps.api, {
    method: "POST",
    path: `/subscriptions/${encodeURIComponent(id)}/test`,
  });
  return done(c, `/console/events/${encodeURIComponent(sent.event_id)}`, "tested");
}

export async function recoverSubscription(c: Context, deps: ConsoleDeps) {
  const id = c.req.param("id")!;
  const form = await formOf(c);
  const recovered = await callApi<{ requeued: number }>(c, deps.api, {
    method: "POST",
    path: `/subscriptions/${encodeURIComponent(id)}/recover`,
    body: { since: form["since"] },
  });
  return done(c, path(id), "recovered", recovered.requeued);
}
