import type { Context } from "hono";
import { ApiError } from "../../errors.ts";
import { isOneOf } from "../../http/auth.ts";
import { type ApiKeyTable, tokenDigest } from "../../security/api_key_table.ts";
import { formOf } from "../deps.ts";
import { assertSameOrigin, endSession, SESSION_TTL_MS, startSession } from "../guard.ts";
import { Page } from "../layout.tsx";
import type { SessionSigner } from "../session.ts";

export interface SignInOptions {
  sessions: SessionSigner;
  keys: ApiKeyTable;
  envKeys: readonly string[];
}

export function signInPage(c: Context, options: SignInOptions, problem?: string) {
  if (options.envKeys.length === 0) return c.redirect("/console", 303);
  return c.html(
    <Page title="Sign in">
      {problem && <p class="error" role="alert">{problem}</p>}
      <form method="post" action="/console/sign-in" class="stack">
        <label>
          API key (an admin key, or a tenant's key for that tenant)
          <input type="password" name="key" required autocomplete="off" autofocus />
        </label>
        <button type="submit">Sign in</button>
      </form>
    </Page>,
    problem ? 401 : 200,
  );
}

/** A key from DISPATCH_API_KEYS or a managed admin or tenant key opens a session; a publish key does not. */
export async function signIn(c: Context, options: SignInOptions) {
  assertSameOrigin(c);
  if (options.envKeys.length === 0) return c.redirect("/console", 303);
  const key = (await formOf(c))["key"];
  if (typeof key !== "string") return signInPage(c, options, "Enter an API key");
  const exp = Date.now() + SESSION_TTL_MS;
  const digest = tokenDigest(key);
  if (isOneOf(digest, options.envKeys.map(tokenDigest))) {
    const keyMark = await options.sessions.keyMark(key);
    await startSession(c, options.sessions, {
      actor: "env_key",
      keyMark,
      tenantId: null,
      readOnly: false,
      exp,
    });
    return c.redirect("/console", 303);
  }
  const stored = await options.keys.find(digest);
  if (stored === undefined) return signInPage(c, options, "Invalid API key");
  if (stored.scope === "publish") {
    throw new ApiError(
      "forbidden",
      "A publish key cannot sign in to the console: use an admin or tenant key",
    );
  }
  await startSession(c, options.sessions, {
    actor: "api_key",
    keyId: stored.id,
    tenantId: stored.tenant_id,
    readOnly: false,
    exp,
  });
  return c.redirect("/console", 303);
}

export function signOut(c: Context) {
  endSession(c);
  return c.redirect("/console/sign-in", 303);
}

/**
 * A portal link: its signed token becomes the session cookie. The page then
 * moves on to the console itself from this origin, since a SameSite=Strict
 * cookie is not sent along a redirect that started on another site.
 */
export async function openPortal(c: Context, options: SignInOptions) {
  const claims = await options.sessions.verify(c.req.query("token"), "portal");
  if (claims === null) {
    throw new ApiError(
      "unauthorized",
      "This portal link has expired or is not valid: ask for a new one",
    );
  }
  const { use: _use, sid: _sid, ...rest } = claims;
  await startSession(c, options.sessions, rest);
  return c.html(
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="refresh" content="0; url=/console" />
        <title>Dispatch</title>
      </head>
      <body>
        <p>
          <a href="/console">Open the console</a>
        </p>
      </body>
    </html>,
  );
}
