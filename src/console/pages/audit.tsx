import type { Context } from "hono";
import { encodeCursor } from "../../http/cursor.ts";
import { AuditFilter, auditQuery } from "../../http/audit_log_routes.ts";
import { type ConsoleDeps, parseQuery, scopeOf } from "../deps.ts";
import { Page, Table, TextFilter, Time } from "../layout.tsx";

const filterFields = ["action", "resource_id", "actor_key_id", "tenant_id", "since", "until"];

/** Who changed what, newest first: the API's `GET /audit-log`, as the session may see it. */
export async function auditPage(c: Context, deps: ConsoleDeps) {
  const s = c.get("console");
  const q = parseQuery(c, AuditFilter);
  const { entries, next } = await deps.views.audit.list(auditQuery(q, scopeOf(c, q.tenant_id)));
  const raw = Object.fromEntries(
    Object.entries(c.req.query()).filter(([k, v]) => filterFields.includes(k) && v !== ""),
  );
  const admin = s.principal.tenantId === null;
  return c.html(
    <Page title="Audit log" s={s} live={q.cursor === undefined}>
      <form class="filters" method="get" action="/console/audit-log">
        <TextFilter label="Action" name="action" query={raw} placeholder="deleteSubscription" />
        <TextFilter label="Resource id" name="resource_id" query={raw} />
        {admin && <TextFilter label="Key id" name="actor_key_id" query={raw} />}
        {admin && <TextFilter label="Tenant" name="tenant_id" query={raw} />}
        <TextFilter label="Since (UTC, ISO 8601)" name="since" query={raw} />
        <TextFilter label="Until" name="until" query={raw} />
        <button type="submit">Filter</button>
        <a href="/console/audit-log">Clear</a>
      </form>
      {entries.length === 0 ? <p class="muted">No entry matches.</p> : (
        <Table
          head={[
            "When",
            "Who",
            "Action",
            "Resource",
            { label: "Tenant", wide: true },
            "Status",
            { label: "Request", wide: true },
          ]}
        >
          {entries.map((e) => (
            <tr>
              <td>
                <Time at={e.at} />
              </td>
              <td>
                {e.actor.type}
                {e.actor.key_id && <span class="muted">{` ${e.actor.key_id}`}</span>}
              </td>
              <td>{e.action}</td>
              <td>
                {e.resource.id === null ? e.resource.type : `${e.resource.type} ${e.resource.id}`}
              </td>
              <td class="hide-narrow">{e.tenant_id ?? "–"}</td>
              <td class="num">{e.status}</td>
              <td class="hide-narrow">
                <code>{e.request_id}</code>
              </td>
            </tr>
          ))}
        </Table>
      )}
      {next !== null && (
        <p class="pager">
          <a
            href={`/console/audit-log?${new URLSearchParams({
              ...raw,
              cursor: encodeCursor(next)!,
            })}`}
          >
            Older entries
          </a>
        </p>
      )}
    </Page>,
  );
}
