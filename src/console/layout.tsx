import type { Child } from "hono/jsx";
import { assetsPath } from "./assets.ts";
import { ago, utc } from "./format.ts";
import type { ConsoleSession } from "./guard.ts";

const sections = [
  ["/console", "Overview"],
  ["/console/events", "Events"],
  ["/console/subscriptions", "Subscriptions"],
  ["/console/deliveries", "Failed deliveries"],
  ["/console/audit-log", "Audit log"],
] as const;

/** A time in UTC with its age; the exact instant in `datetime`. */
export function Time(props: { at: Date | string | null }) {
  if (props.at === null) return <span>–</span>;
  const iso = new Date(props.at).toISOString();
  return <time datetime={iso} title={utc(props.at)}>{utc(props.at)} ({ago(props.at)})</time>;
}

/**
 * A form that changes state: POST, with the session's CSRF token. A
 * read-only session gets none: nothing that could change state is shown.
 */
export function PostForm(
  props: { s: ConsoleSession; action: string; class?: string; children: Child },
) {
  if (props.s.claims.readOnly) return null;
  return (
    <form method="post" action={props.action} class={props.class}>
      <input type="hidden" name="_csrf" value={props.s.csrf} />
      {props.children}
    </form>
  );
}

/** A column heading; `wide`: a phone-width screen leaves the column out. */
export type Column = string | { label: Child; wide?: true };

/** A table that scrolls sideways when it must; `head` names its columns. */
export function Table(props: { head: Column[]; children: Child }) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {props.head.map((h) => (
              <th scope="col" class={typeof h !== "string" && h.wide ? "hide-narrow" : undefined}>
                {typeof h === "string" ? h : h.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

/** A filter's text field, filled from the page's query. */
export function TextFilter(
  props: { label: string; name: string; query: Record<string, string>; placeholder?: string },
) {
  return (
    <label>
      {props.label}
      <input
        type="text"
        name={props.name}
        value={props.query[props.name] ?? ""}
        placeholder={props.placeholder}
      />
    </label>
  );
}

/** Who the session is, as the header says it. */
function who(s: ConsoleSession): string {
  const { claims } = s;
  const tenant = claims.tenantId === null ? "all tenants" : `tenant ${claims.tenantId}`;
  const kind = claims.actor === "portal"
    ? "portal"
    : claims.actor === "open"
    ? "open API"
    : "API key";
  return `${kind}, ${tenant}${claims.readOnly ? ", read-only" : ""}`;
}

export function Page(
  props: {
    title: string;
    s?: ConsoleSession;
    /** The page lists things that change: the script refreshes its main element. */
    live?: boolean;
    notice?: string | undefined;
    children: Child;
  },
) {
  const { s } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · Dispatch</title>
        <link rel="stylesheet" href={`${assetsPath}/console.css`} />
        <script src={`${assetsPath}/console.js`} defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <strong class="brand">Dispatch</strong>
          {s && (
            <nav aria-label="Sections">
              <ul>
                {sections.map(([href, label]) => (
                  <li>
                    <a href={href}>{label}</a>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          {s && (
            <div class="who">
              <span>{who(s)}</span>
              {s.claims.actor !== "open" && s.claims.actor !== "portal" && (
                <PostForm s={s} action="/console/sign-out">
                  <button type="submit" class="link">Sign out</button>
                </PostForm>
              )}
            </div>
          )}
        </header>
        {s?.open && (
          <p class="banner" role="alert">
            The API is open: DISPATCH_API_KEYS is not set, so anyone who can reach this address can
            read and change everything. Set it before exposing Dispatch.
          </p>
        )}
        <main id="main" data-live={props.live ? "true" : undefined}>
          {props.notice && <p class="notice" role="status">{props.notice}</p>}
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}
