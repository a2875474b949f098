/**
 * Endpoint authentication as the sender does it, against a real receiver
 * and a real OAuth token endpoint on 127.0.0.1: Basic and Bearer headers,
 * tokens fetched, kept, shared, refetched on expiry and on a 401, and token
 * requests that fail as `auth_failed` attempts.
 */
import assert from "node:assert/strict";
import type { ClaimedDelivery, EndpointAuth } from "../../src/engine/shapes.ts";
import { createTokenCache, type TokenCache } from "../../src/delivery/token_cache.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { type Cidr, parseCidr } from "../../src/security/ip.ts";
import { createSecretCipher } from "../../src/security/secret_cipher.ts";
import { createSender } from "../../src/worker/sender.ts";
import { claimedDelivery } from "../helpers/queue.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { startTokenEndpoint, type TokenEndpointOptions } from "../helpers/token_endpoint.ts";

const cipher = createSecretCipher(crypto.getRandomValues(new Uint8Array(32)));
const clientId = "dispatch client";
// Characters that HTTP Basic and the form encode differently.
const clientSecret = "s3cr:et+/&=é-client-secret";
const live = () => new AbortController().signal;

/** A sender with a log the test reads, a clock it moves, and private targets as told. */
function sender(
  options: {
    tokens?: TokenCache;
    allowPrivateTargets?: boolean;
    allowedTargetCidrs?: Cidr[];
    deliveryTimeoutMs?: number;
  } = {},
) {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });
  const metrics = createMetrics({
    inFlight: () => 0,
    queueStats: () => Promise.reject(new Error("Not read in this test")),
    log,
  });
  const send = createSender({
    log,
    metrics,
    secrets: cipher,
    resolve: () => Promise.reject(new Error("No DNS in this test")),
    ...(options.tokens ? { tokens: options.tokens } : {}),
  }, {
    deliveryTimeoutMs: options.deliveryTimeoutMs ?? 5000,
    retryBaseDelayMs: 0,
    retryMaxDelayMs: 60_000,
    allowPrivateTargets: options.allowPrivateTargets ?? true,
    allowedTargetCidrs: options.allowedTargetCidrs ?? [],
  });
  return { send, lines };
}

async function withAuth(
  url: string,
  auth: EndpointAuth,
  secret: string,
  extra: Partial<ClaimedDelivery> = {},
): Promise<ClaimedDelivery> {
  return claimedDelivery({ url, auth, auth_secret: await cipher.seal(secret), ...extra });
}

const oauth = (tokenUrl: string, extra: Partial<EndpointAuth> = {}): EndpointAuth => ({
  type: "oauth2_client_credentials",
  token_url: tokenUrl,
  client_id: clientId,
  scope: null,
  audience: null,
  client_auth: "basic",
  ...extra,
} as EndpointAuth);

/** A token endpoint and a receiver, closed after `test`. */
async function withServers(
  tokenOptions: Partial<TokenEndpointOptions>,
  respond: Parameters<typeof startReceiver>[0],
  test: (
    token: ReturnType<typeof startTokenEndpoint>,
    receiver: ReturnType<typeof startReceiver>,
  ) => Promise<void>,
) {
  const token = startTokenEndpoint({ clientId, clientSecret, ...tokenOptions });
  const receiver = startReceiver(respond);
  try {
    await test(token, receiver);
  } finally {
    await receiver.close();
    await token.close();
  }
}

const authorizations = (receiver: ReturnType<typeof startReceiver>) =>
  receiver.received.map((r) => r.headers.get("authorization"));

Deno.test("basic auth sends Authorization: Basic of username:password in UTF-8, and nothing else changes", async () => {
  const receiver = startReceiver();
  const { send, lines } = sender();
  try {
    const d = await withAuth(receiver.url, { type: "basic", username: "alice" }, "pä ss:word");
    const outcome = await send(d, live());
    assert.equal(outcome?.status, "delivered");
    const headers = receiver.received[0]!.headers;
    assert.equal(headers.get("authorization"), "Basic YWxpY2U6cMOkIHNzOndvcmQ=");
    assert.equal(headers.get("x-dispatch-subscription-id"), "sub_1");
    assert.ok(!lines.join("\n").includes("pä ss:word"), "the log shows the password");
  } finally {
    await receiver.close();
  }
});

Deno.test("bearer auth sends Authorization: Bearer with the token as given", async () => {
  const receiver = startReceiver();
  const { send, lines } = sender();
  try {
    const d = await withAuth(receiver.url, { type: "bearer" }, "tok-static.123~");
    assert.equal((await send(d, live()))?.status, "delivered");
    assert.deepEqual(authorizations(receiver), ["Bearer tok-static.123~"]);
    assert.ok(!lines.join("\n").includes("tok-static.123~"), "the log shows the token");
  } finally {
    await receiver.close();
  }
});

Deno.test("oauth2 with client_auth basic: one token request with HTTP Basic serves many deliveries", async () => {
  await withServers({ expiresIn: 3600 }, undefined, async (token, receiver) => {
    const { send, lines } = sender();
    const auth = oauth(token.url, { scope: "hooks:write read", audience: "https://api.example" });
    const d = await withAuth(receiver.url, auth, clientSecret);
    for (let i = 0; i < 3; i++) assert.equal((await send(d, live()))?.status, "delivered");
    assert.equal(token.requests.length, 1);
    const [request] = token.requests;
    assert.equal(request!.contentType, "application/x-www-form-urlencoded");
    assert.deepEqual(Object.fromEntries(request!.form), {
      grant_type: "client_credentials",
      scope: "hooks:write read",
      audience: "https://api.example",
    });
    assert.match(request!.authorization ?? "", /^Basic /);
    assert.deepEqual(authorizations(receiver), ["Bearer tok_1", "Bearer tok_1", "Bearer tok_1"]);
    assert.ok(!lines.join("\n").includes("tok_1"), "the log shows the access token");
    assert.ok(!lines.join("\n").includes(clientSecret), "the log shows the client secret");
  });
});

Deno.test("oauth2 with client_auth post puts client_id and client_secret in the form, without Basic", async () => {
  await withServers({}, undefined, async (token, receiver) => {
    const { send } = sender();
    const d = await withAuth(receiver.url, oauth(token.url, { client_auth: "post" }), clientSecret);
    assert.equal((await send(d, live()))?.status, "delivered");
    const [request] = token.requests;
    assert.equal(request!.authorization, null);
    assert.deepEqual(Object.fromEntries(request!.form), {
      grant_type: "client_credentials",
      client_id: clientId,
      client_secret: clientSecret,
    });
    assert.deepEqual(authorizations(receiver), ["Bearer tok_1"]);
  });
});

Deno.test("a token is used until 30 s before its expires_in, then fetched again", async () => {
  let now = 1_000_000;
  await withServers({ expiresIn: 31 }, undefined, async (token, receiver) => {
    const { send } = sender({ tokens: createTokenCache({ now: () => now }) });
    const d = await withAuth(receiver.url, oauth(token.url), clientSecret);
    await send(d, live());
    now += 999;
    await send(d, live());
    assert.equal(token.requests.length, 1, "still good 999 ms in");
    now += 1;
    await send(d, live());
    assert.equal(token.requests.length, 2, "refetched 1 s (31 s - 30 s) in");
    assert.deepEqual(authorizations(receiver), ["Bearer tok_1", "Bearer tok_1", "Bearer tok_2"]);
  });
});

Deno.test("a token without expires_in is kept for 5 minutes", async () => {
  let now = 1_000_000;
  await withServers({}, undefined, async (token, receiver) => {
    const { send } = sender({ tokens: createTokenCache({ now: () => now }) });
    const d = await withAuth(receiver.url, oauth(token.url), clientSecret);
    await send(d, live());
    now += 299_999;
    await send(d, live());
    assert.equal(token.requests.length, 1);
    now += 1;
    await send(d, live());
    assert.equal(token.requests.length, 2);
  });
});

Deno.test("a changed auth gets a new token, and each subscription its own", async () => {
  await withServers({ expiresIn: 3600 }, undefined, async (token, receiver) => {
    const { send } = sender();
    const auth = oauth(token.url);
    await send(await withAuth(receiver.url, auth, clientSecret), live());
    await send(await withAuth(receiver.url, auth, clientSecret), live());
    assert.equal(token.requests.length, 2, "a secret written again is a new auth");
    await send(await withAuth(receiver.url, auth, clientSecret, { subscription_seq: 4 }), live());
    assert.equal(token.requests.length, 3);
  });
});

Deno.test("concurrent deliveries of one subscription make one token request while it runs", async () => {
  const held = heldAnswer();
  await withServers(
    { expiresIn: 3600, answer: held.answer },
    undefined,
    async (token, receiver) => {
      const real = createTokenCache();
      const asked = Promise.withResolvers<void>();
      let asks = 0;
      const tokens: TokenCache = {
        get(...args) {
          if (++asks === 5) asked.resolve();
          return real.get(...args);
        },
        forget: real.forget,
      };
      const { send } = sender({ tokens });
      const d = await withAuth(receiver.url, oauth(token.url), clientSecret);
      const sends = Array.from({ length: 5 }, () => send(d, live()));
      // Every delivery has asked for a token while the first request is held.
      await Promise.all([asked.promise, token.waitFor(1)]);
      held.release();
      const outcomes = await Promise.all(sends);
      assert.deepEqual(outcomes.map((o) => o?.status), Array(5).fill("delivered"));
      assert.equal(token.requests.length, 1);
      assert.deepEqual(authorizations(receiver), Array(5).fill("Bearer tok_1"));
    },
  );
});

/** One attempt of a subscription with OAuth, against a token endpoint and a receiver of its own. */
async function oauthAttempt(
  tokenOptions: Partial<TokenEndpointOptions>,
  respond?: Parameters<typeof startReceiver>[0],
  options: {
    secret?: string;
    deliveryTimeoutMs?: number;
    url?: string;
    /** Before the servers close: e.g. lets a held answer go. */
    beforeClose?: () => void;
  } = {},
) {
  const token = startTokenEndpoint({ clientId, clientSecret, ...tokenOptions });
  const receiver = startReceiver(respond);
  const { send, lines } = sender({
    ...(options.url ? { allowPrivateTargets: false } : {}),
    ...(options.deliveryTimeoutMs ? { deliveryTimeoutMs: options.deliveryTimeoutMs } : {}),
  });
  try {
    const d = await withAuth(
      options.url ?? receiver.url,
      oauth(token.url),
      options.secret ?? clientSecret,
    );
    const outcome = await send(d, live());
    return { outcome, record: outcome?.record, token, receiver, log: lines.join("\n") };
  } finally {
    options.beforeClose?.();
    await receiver.close();
    await token.close();
  }
}

/** An answer the token endpoint holds until the test lets it go. */
function heldAnswer() {
  const held = Promise.withResolvers<void>();
  return {
    answer: async () => {
      await held.promise;
      return undefined;
    },
    release: () => held.resolve(),
  };
}

Deno.test("a 401 from the endpoint gets a new token and the request again, in the same attempt", async () => {
  const { outcome, token, receiver } = await oauthAttempt(
    { expiresIn: 3600 },
    (r) =>
      new Response(null, { status: r.headers.get("authorization") === "Bearer tok_1" ? 401 : 200 }),
  );
  assert.equal(outcome?.status, "delivered");
  assert.equal(outcome.record?.statusCode, 200);
  assert.equal(token.requests.length, 2);
  assert.deepEqual(authorizations(receiver), ["Bearer tok_1", "Bearer tok_2"]);
});

Deno.test("a second 401 fails the attempt as usual, after one refetch only", async () => {
  const { outcome, token, receiver } = await oauthAttempt(
    { expiresIn: 3600 },
    () => new Response("no", { status: 401 }),
  );
  assert.equal(outcome?.status, "retrying");
  assert.equal(outcome.record?.errorClass, "http_status");
  assert.equal(outcome.record?.statusCode, 401);
  assert.equal(token.requests.length, 2);
  assert.deepEqual(authorizations(receiver), ["Bearer tok_1", "Bearer tok_2"]);
});

Deno.test("a token endpoint that fails gives an auth_failed attempt with its status and the first 4 KiB of its answer, retried", async () => {
  // It echoes the client secret: the record must not.
  const answer = `maintenance ${clientSecret} ` + "x".repeat(10_000);
  await withServers(
    { answer: () => new Response(answer, { status: 503 }) },
    undefined,
    async (token, receiver) => {
      const { send, lines } = sender();
      const d = await withAuth(receiver.url, oauth(token.url), clientSecret);
      const outcome = await send(d, live());
      assert.equal(outcome?.status, "retrying");
      assert.equal(outcome.record?.errorClass, "auth_failed");
      assert.equal(outcome.record?.statusCode, 503);
      assert.equal(
        outcome.record?.error,
        `Token request to "${new URL(token.url).host}" answered 503`,
      );
      const body = outcome.record?.responseBody ?? "";
      assert.ok(body.startsWith("maintenance [redacted] xxx"), body.slice(0, 40));
      assert.ok(new TextEncoder().encode(body).length <= 4096);
      assert.ok(body.length > 4000);
      assert.equal(
        outcome.verdict,
        null,
        "the endpoint's health is not judged by its token endpoint",
      );
      assert.equal(receiver.received.length, 0);
      // Failures are not kept: the next attempt asks again.
      await send(d, live());
      assert.equal(token.requests.length, 2);
      assert.ok(!lines.join("\n").includes(clientSecret));
      assert.match(lines.join("\n"), /"error_class":"auth_failed"/);
    },
  );
});

Deno.test("a 410 from the token endpoint is auth_failed, not the endpoint gone", async () => {
  const { outcome } = await oauthAttempt({ answer: () => new Response("gone", { status: 410 }) });
  assert.equal(outcome?.status, "retrying");
  assert.equal(outcome.record?.errorClass, "auth_failed");
  assert.equal(outcome.record?.statusCode, 410);
});

Deno.test("a 2xx without access_token is auth_failed, and its answer is not recorded", async () => {
  const { record, receiver } = await oauthAttempt({
    answer: () => Response.json({ token: "tok_hidden" }),
  });
  assert.equal(record?.errorClass, "auth_failed");
  assert.equal(record?.statusCode, 200);
  assert.match(record?.error ?? "", /answered without an access_token/);
  assert.equal(record?.responseBody, null);
  assert.equal(receiver.received.length, 0);
});

Deno.test("an access_token that cannot go into a header is auth_failed", async () => {
  const { record, receiver } = await oauthAttempt({
    answer: () => Response.json({ access_token: "tok\r\nx-injected: 1" }),
  });
  assert.equal(record?.errorClass, "auth_failed");
  assert.match(record?.error ?? "", /answered without an access_token/);
  assert.equal(receiver.received.length, 0);
});

Deno.test("wrong client credentials are auth_failed with the token endpoint's 401", async () => {
  const { record } = await oauthAttempt({}, undefined, { secret: "not-the-secret" });
  assert.equal(record?.errorClass, "auth_failed");
  assert.equal(record?.statusCode, 401);
  assert.equal(record?.responseBody, '{"error":"invalid_client"}');
});

Deno.test("a token request past the delivery timeout is auth_failed", async () => {
  const held = heldAnswer();
  const { record, receiver } = await oauthAttempt({ answer: held.answer }, undefined, {
    deliveryTimeoutMs: 100,
    beforeClose: held.release,
  });
  assert.equal(record?.errorClass, "auth_failed");
  assert.equal(record?.statusCode, null);
  assert.match(record?.error ?? "", /timed out after 100 ms/);
  assert.equal(receiver.received.length, 0);
});

Deno.test("a token_url the SSRF guard refuses is auth_failed, and nothing is sent to it", async () => {
  const { outcome, token } = await oauthAttempt({}, undefined, { url: "https://hooks.example/x" });
  assert.equal(outcome?.status, "retrying");
  assert.equal(outcome.record?.errorClass, "auth_failed");
  assert.match(outcome.record?.error ?? "", /refused: .*loopback targets are not allowed/);
  assert.equal(token.requests.length, 0);
});

Deno.test("the token request goes through the delivery's guard to the address it checked", async () => {
  await withServers({}, undefined, async (token, receiver) => {
    // localhost is checked (not an IP literal), so both requests go through a pinned client.
    const { send } = sender({
      allowPrivateTargets: false,
      allowedTargetCidrs: [parseCidr("127.0.0.0/8") as Cidr],
    });
    const local = (url: string) => url.replace("127.0.0.1", "localhost");
    const d = await withAuth(local(receiver.url), oauth(local(token.url)), clientSecret);
    const outcome = await send(d, live());
    assert.equal(outcome?.status, "delivered");
    assert.equal(token.requests.length, 1);
    assert.deepEqual(authorizations(receiver), ["Bearer tok_1"]);
  });
});
