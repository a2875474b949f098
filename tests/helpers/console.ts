import type { TestApp } from "./app.ts";

/**
 * A browser's view of the console without a browser: keeps the session
 * cookie, sends forms with the page's CSRF token and the console's Origin.
 */
export interface ConsoleClient {
  get(path: string): Promise<Response>;
  /** Posts a form; `csrf` false leaves the token out, a string sends that one. */
  post(
    path: string,
    fields?: Record<string, string | string[]>,
    options?: { csrf?: boolean | string; origin?: string },
  ): Promise<Response>;
  /** The CSRF token of the last page read that had one. */
  csrf: string | null;
  cookie: string | null;
}

export const consoleOrigin = "http://localhost";

export function consoleClient(t: Pick<TestApp, "fetch">): ConsoleClient {
  const client: ConsoleClient = {
    csrf: null,
    cookie: null,
    async get(path) {
      const res = await send(new Request(consoleOrigin + path));
      return res;
    },
    async post(path, fields = {}, options = {}) {
      const form = new URLSearchParams();
      const csrf = options.csrf ?? true;
      if (csrf === true && client.csrf !== null) form.append("_csrf", client.csrf);
      if (typeof csrf === "string") form.append("_csrf", csrf);
      for (const [name, value] of Object.entries(fields)) {
        for (const v of [value].flat()) form.append(name, v);
      }
      return await send(
        new Request(consoleOrigin + path, {
          method: "POST",
          body: form,
          headers: { origin: options.origin ?? consoleOrigin },
        }),
      );
    },
  };
  async function send(request: Request): Promise<Response> {
    if (client.cookie !== null) request.headers.set("cookie", client.cookie);
    const res = await t.fetch(request);
    const set = res.headers.get("set-cookie");
    if (set !== null) {
      const value = /^dispatch_console=([^;]*)/.exec(set)?.[1] ?? "";
      client.cookie = value === "" ? null : `dispatch_console=${value}`;
    }
    if ((res.headers.get("content-type") ?? "").startsWith("text/html")) {
      const html = await res.clone().text();
      client.csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? client.csrf;
    }
    return res;
  }
  return client;
}

/** The forms of a page that change state (`method="post"`). */
export function postForms(html: string): string[] {
  return [...html.matchAll(/<form[^>]*method="post"[^>]*>/g)].map((m) => m[0]);
}
