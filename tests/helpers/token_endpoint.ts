/**
 * A local OAuth 2.0 token endpoint (client credentials) on 127.0.0.1, port 0:
 * counts requests, checks the client's credentials in either form, and
 * answers `tok_1`, `tok_2`, … unless told to answer something else.
 *
 * @module
 */

export interface TokenRequest {
  form: URLSearchParams;
  authorization: string | null;
  contentType: string | null;
}

export interface TokenEndpoint {
  url: string;
  /** Every request, in order. */
  requests: TokenRequest[];
  /** Tokens handed out, in order. */
  issued: string[];
  /** Resolves once `n` requests have arrived. */
  waitFor(n: number): Promise<void>;
  close(): Promise<void>;
}

export interface TokenEndpointOptions {
  clientId: string;
  clientSecret: string;
  /** `expires_in` of each token; undefined: none is sent. */
  expiresIn?: number;
  /**
   * Answers instead of a token (after the credentials were checked); undefined
   * from it gives the token. May wait, to hold the answer.
   */
  answer?: (index: number) => Response | undefined | Promise<Response | undefined>;
}

export function startTokenEndpoint(options: TokenEndpointOptions): TokenEndpoint {
  const requests: TokenRequest[] = [];
  const issued: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const form = new URLSearchParams(await req.text());
    const authorization = req.headers.get("authorization");
    const index = requests.push({
      form,
      authorization,
      contentType: req.headers.get("content-type"),
    }) - 1;
    for (const w of waiters.filter((w) => requests.length >= w.n)) w.resolve();
    if (!credentialsMatch(form, authorization, options)) {
      return Response.json({ error: "invalid_client" }, { status: 401 });
    }
    if (form.get("grant_type") !== "client_credentials") {
      return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
    }
    const answer = await options.answer?.(index);
    if (answer !== undefined) return answer;
    const token = `tok_${issued.length + 1}`;
    issued.push(token);
    return Response.json({
      access_token: token,
      token_type: "Bearer",
      ...(options.expiresIn === undefined ? {} : { expires_in: options.expiresIn }),
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/oauth/token`,
    requests,
    issued,
    waitFor(n) {
      if (requests.length >= n) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ n, resolve });
      return promise;
    },
    close: () => server.shutdown(),
  };
}

/** RFC 6749 §2.3.1: HTTP Basic of the form-encoded id and secret, or both in the form, not both. */
function credentialsMatch(
  form: URLSearchParams,
  authorization: string | null,
  options: TokenEndpointOptions,
): boolean {
  if (authorization !== null) {
    if (form.has("client_secret")) return false;
    const encoded = /^Basic (.+)$/.exec(authorization)?.[1];
    if (encoded === undefined) return false;
    const [id, secret] = new TextDecoder().decode(Uint8Array.fromBase64(encoded)).split(":")
      .map((part) => new URLSearchParams(`v=${part}`).get("v"));
    return id === options.clientId && secret === options.clientSecret;
  }
  return form.get("client_id") === options.clientId &&
    form.get("client_secret") === options.clientSecret;
}
