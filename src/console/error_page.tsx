import type { Context } from "hono";
import { ApiError } from "../errors.ts";
import type { Logger } from "../observability/log.ts";
import { Page } from "./layout.tsx";

/** An error as a page, with the API's status and message; a cause the client cannot fix is logged. */
export function errorPage(err: unknown, c: Context, log: Logger) {
  const api = err instanceof ApiError
    ? err
    : new ApiError("internal", "Internal error: the server logged the cause");
  if (api.code === "internal") {
    log.error("Console request failed", { method: c.req.method, path: c.req.path, error: err });
  }
  const s = c.get("console");
  return c.html(
    <Page title={api.code === "not_found" ? "Not found" : "That did not work"} s={s}>
      <p class="error" role="alert">{api.message}</p>
      {api.code === "unauthorized"
        ? (
          <p>
            <a href="/console/sign-in">Sign in</a>
          </p>
        )
        : (
          <p>
            <a href="/console">Back to the overview</a>
          </p>
        )}
    </Page>,
    api.status,
  );
}
