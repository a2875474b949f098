import type { Context } from "hono";
import { ActivityChart } from "../charts.tsx";
import type { ConsoleDeps } from "../deps.ts";
import { scopeOf } from "../deps.ts";
import { duration } from "../format.ts";
import { Page, Table, Time } from "../layout.tsx";

const HOUR = 3_600_000;

function Card(props: { label: string; value: string | number }) {
  return (
    <div class="card">
      <div class="muted">{props.label}</div>
      <div class="figure">{props.value}</div>
    </div>
  );
}

/**
 * At a glance: the queue, the last hour and day as charts, what fails most,
 * what is held or disabled. A tenant's session sees its own figures only.
 */
export async function overviewPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const scope = scopeOf(c);
  const now = Date.now();
  const tenant = scope.tenantId ?? null;
  const [queue, summary, hour, day, failing, troubled] = await Promise.all([
    tenant === null ? deps.views.queueStats() : null,
    tenant === null ? null : deps.views.tenantQueue(tenant),
    deps.views.activity({
      ...scope,
      since: new Date(Math.floor(now / 300_000) * 300_000 - 11 * 300_000),
      bucketSeconds: 300,
      buckets: 12,
    }),
    deps.views.activity({
      ...scope,
      since: new Date(Math.floor(now / HOUR) * HOUR - 23 * HOUR),
      bucketSeconds: 3600,
      buckets: 24,
    }),
    deps.views.failingSubscriptions({ ...scope, since: new Date(now - 24 * HOUR), limit: 10 }),
    deps.views.troubledSubscriptions({ ...scope, limit: 50 }),
  ]);
  const open = troubled.filter((t) => t.circuit_state !== "closed");
  const disabled = troubled.filter((t) => !t.active);
  const waiting = queue ?? summary!;
  return c.html(
    <Page title={tenant === null ? "Overview" : `Overview of tenant ${tenant}`} s={s} live>
      <section aria-labelledby="queue">
        <h2 id="queue">Queue</h2>
        <div class="grid">
          <Card label="Pending" value={waiting.pending} />
          <Card label="Retrying" value={waiting.retrying} />
          <Card label="Being sent" value={waiting.processing} />
          {queue && (
            <Card label="Oldest due delivery" value={duration(queue.oldestDueAgeSeconds * 1000)} />
          )}
          {summary && <Card label="Failed" value={summary.failed} />}
          <Card label="Open circuits" value={open.length} />
          <Card label="Disabled subscriptions" value={disabled.length} />
        </div>
      </section>
      <section aria-labelledby="flow">
        <h2 id="flow">Events in, deliveries out</h2>
        <ActivityChart buckets={hour} label="Last hour, per 5 min" tick="1 h ago" />
        <ActivityChart buckets={day} label="Last day, per hour" tick="24 h ago" />
      </section>
      <section aria-labelledby="failing">
        <h2 id="failing">Most failing subscriptions, last 24 h</h2>
        {failing.length === 0
          ? <p class="muted">No failed attempt in 24 h.</p>
          : (
            <Table head={["Subscription", "URL", "Failed", "Attempts"]}>
              {failing.map((f) => (
                <tr>
                  <td>
                    <a href={`/console/subscriptions/${encodeURIComponent(f.id)}`}>{f.id}</a>
                  </td>
                  <td>{f.url}</td>
                  <td class="num">{f.failures}</td>
                  <td class="num">{f.attempts}</td>
                </tr>
              ))}
            </Table>
          )}
      </section>
      <section aria-labelledby="held">
        <h2 id="held">Open circuits and disabled subscriptions</h2>
        {troubled.length === 0
          ? <p class="muted">None.</p>
          : (
            <Table head={["Subscription", "State", "Circuit", "Reason or next probe"]}>
              {troubled.map((t) => (
                <tr>
                  <td>
                    <a href={`/console/subscriptions/${encodeURIComponent(t.id)}`}>{t.id}</a>
                  </td>
                  <td>
                    <span class={`status status-${t.active ? "active" : "disabled"}`}>
                      {t.active ? "active" : "disabled"}
                    </span>
                  </td>
                  <td>
                    <span class={`status status-${t.circuit_state}`}>{t.circuit_state}</span>
                  </td>
                  <td>
                    {t.active ? <Time at={t.circuit_next_probe_at} /> : t.disabled_reason}
                  </td>
                </tr>
              ))}
            </Table>
          )}
      </section>
    </Page>,
  );
}
