/**
 * One outbound HTTP attempt of a webhook delivery.
 *
 * @module
 */
import type { AttemptErrorClass as ResultClass } from "../engine/states.ts";
import { toStorable } from "../storable.ts";
import { type PinnedClient, pinnedClient } from "../security/pinned_client.ts";

/** What to POST, with headers (signature included) already built. */
export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Why an attempt this process made failed (`states.ts` lists them; the rescuer writes the last). */
export type AttemptErrorClass = Exclude<ResultClass, "lease_expired">;

/** The outcome of one attempt. Failures are values, not exceptions. */
export interface AttemptResult {
  startedAt: Date;
  durationMs: number;
  /** Null when no response arrived. */
  statusCode: number | null;
  /** True iff the endpoint answered 2xx. */
  ok: boolean;
  errorClass: AttemptErrorClass | null;
  /** At most {@linkcode MAX_ERROR_BYTES} bytes of UTF-8: it is stored and logged. */
  error: string | null;
  /**
   * The first {@linkcode MAX_RESPONSE_BODY_BYTES} bytes, decoded as UTF-8 and made storable
   * (see `toStorable`), and no more than that many bytes once made so: any bytes a receiver
   * sends can be recorded.
   */
  responseBody: string | null;
  /**
   * Only the headers in {@linkcode KEPT_RESPONSE_HEADERS}, with lowercase names, storable,
   * names and values together at most {@linkcode MAX_HEADER_BYTES} bytes.
   */
  responseHeaders: Record<string, string>;
  /** From Retry-After on a 429 or 503, never negative; otherwise null. */
  retryAfterMs: number | null;
}

/** Options for {@linkcode send}. */
export interface SendOptions {
  timeoutMs: number;
  /**
   * Aborts the attempt, e.g. on shutdown: reported as `"aborted"` once the
   * request was handed to the network; before that, `send` resolves to null.
   */
  signal?: AbortSignal;
  /** Clock in epoch milliseconds, for `startedAt` and Retry-After dates. */
  now?: () => number;
  /**
   * Runs before connecting, within the timeout; a failure it returns is the
   * attempt's result and nothing is sent (the SSRF guard).
   */
  checkTarget?: ((url: string, signal: AbortSignal) => Promise<CheckedTarget>) | undefined;
  /**
   * The client to send with (a client certificate, trusted CAs, a proxy). One with `pin` gets
   * the checked address (or the URL's host, unchecked) pinned for the attempt. Default: fetch's
   * own, or a pinned client of this attempt when the check answers an address.
   */
  client?: { client: Deno.HttpClient; pin?: PinnedClient["pin"] } | undefined;
}

/**
 * The target check's answer: why nothing may be sent, or the address to connect to (null: the
 * URL's host is an IP literal, which is where `fetch` connects anyway).
 */
export type CheckedTarget = AttemptFailure | { address: string | null };

/** Enough of the response body to debug an endpoint, without storing whatever it sends. */
const MAX_RESPONSE_BODY_BYTES = 4096;

/** Response headers worth storing with an attempt. */
const KEPT_RESPONSE_HEADERS: readonly string[] = ["content-type", "retry-after", "location"];

/** The kept headers' budget, names included: an endpoint can send hundreds of KB in one. */
const MAX_HEADER_BYTES = 4096;

/** An error text's budget: it may quote what the endpoint sent (a Location, a TLS alert). */
const MAX_ERROR_BYTES = 1024;

/**
 * POSTs the request once, never following redirects.
 *
 * Every failed attempt is reported in the result; it resolves to null when
 * `options.signal` aborted before anything was sent, and rejects only for an
 * invalid `timeoutMs`.
 */
export async function send(
  request: WebhookRequest,
  options: SendOptions,
): Promise<AttemptResult | null> {
  if (!Number.isSafeInteger(options.timeoutMs) || options.timeoutMs <= 0) {
    throw new RangeError(`Expected timeoutMs to be a positive integer, got ${options.timeoutMs}`);
  }
  const now = options.now ?? Date.now;
  const startedAt = new Date(now());
  const start = performance.now();
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal === undefined
    ? timeout
    : AbortSignal.any([timeout, options.signal]);
  const failed = (failure: AttemptFailure): AttemptResult => ({
    startedAt,
    durationMs: elapsedMs(start),
    statusCode: null,
    ok: false,
    errorClass: failure.errorClass,
    error: clip(failure.error, MAX_ERROR_BYTES),
    responseBody: null,
    responseHeaders: {},
    retryAfterMs: null,
  });

  // Stopped by the caller, not by the timeout.
  const stopped = () => options.signal?.aborted === true && !timeout.aborted;
  let handedOff = false;
  let connection: GuardedConnection | null = null;
  let response: Response;
  try {
    const checked = await guardedConnection(request.url, {
      checkTarget: options.checkTarget,
      client: options.client,
      signal,
    });
    if ("errorClass" in checked) return stopped() ? null : failed(checked);
    connection = checked;
    if (stopped()) {
      await connection.close();
      return null;
    }
    handedOff = true;
    response = await connection.fetch({
      method: "POST",
      headers: request.headers,
      body: request.body,
    });
  } catch (error) {
    await connection?.close();
    if (!handedOff && stopped()) return null;
    return failed(
      signal.aborted
        ? abortFailure(signal.reason === timeout.reason, options.timeoutMs)
        : networkFailure(error, request.url),
    );
  }

  const responseBody = await readPrefix(response.body, MAX_RESPONSE_BODY_BYTES);
  await connection.close();
  const status = response.status;
  const ok = status >= 200 && status < 300;
  const location = response.headers.get("location");
  let failure: Failure = { errorClass: null, error: null };
  if (status >= 300 && status < 400) {
    const target = location === null ? "without a Location header" : `to "${location}"`;
    failure = {
      errorClass: "redirect",
      error: clip(
        toStorable(`Redirect ${target} not followed (status ${status})`),
        MAX_ERROR_BYTES,
      ),
    };
  } else if (!ok) {
    failure = { errorClass: "http_status", error: `Endpoint answered ${status}` };
  }
  const retryAfter = response.headers.get("retry-after");
  return {
    startedAt,
    durationMs: elapsedMs(start),
    statusCode: status,
    ok,
    ...failure,
    responseBody,
    responseHeaders: keptHeaders(response.headers),
    retryAfterMs: (status === 429 || status === 503) && retryAfter !== null
      ? parseRetryAfter(retryAfter, now())
      : null,
  };
}

/** A connection for one request, to the address the target check approved. */
export interface GuardedConnection {
  /** Requests the URL it was made for, never following redirects. */
  fetch(init: Omit<RequestInit, "signal" | "redirect" | "client">): Promise<Response>;
  /** Once the answer is read. */
  close(): Promise<void>;
}

/**
 * Runs the target check (the SSRF guard) on `url` and answers its refusal, or a
 * connection pinned to the address it checked: what deliveries and OAuth token
 * requests both go out through. Rejects when `signal` aborts the check.
 */
export async function guardedConnection(
  url: string,
  options: Pick<SendOptions, "checkTarget" | "client"> & { signal: AbortSignal },
): Promise<AttemptFailure | GuardedConnection> {
  const checked = await options.checkTarget?.(url, options.signal) ?? { address: null };
  if ("errorClass" in checked) return checked;
  let pinned = options.client;
  let own: PinnedClient | null = null;
  let unpin = () => {};
  if (pinned?.pin === undefined && checked.address !== null) pinned = own = pinnedClient();
  if (pinned?.pin !== undefined) {
    const { hostname } = new URL(url);
    // No address: an IP literal the guard checked, or a name with no guard (the tunnel resolves it).
    const address = checked.address ?? hostname.replace(/^\[(.*)\]$/, "$1");
    unpin = pinned.pin({ host: hostname, port: portOf(url), address });
  }
  return {
    fetch: (init) =>
      fetch(url, {
        ...init,
        redirect: "manual",
        signal: options.signal,
        ...(pinned === undefined ? {} : { client: pinned.client }),
      }),
    close: async () => {
      unpin();
      await own?.close();
    },
  };
}

/** Why an attempt failed before any response arrived. */
export interface AttemptFailure {
  errorClass: AttemptErrorClass;
  error: string;
}

type Failure = { errorClass: null; error: null } | AttemptFailure;

function abortFailure(timedOut: boolean, timeoutMs: number): AttemptFailure {
  return timedOut ? { errorClass: "timeout", error: `Timed out after ${timeoutMs} ms` } : {
    errorClass: "aborted",
    error: "Shutdown cut the attempt off before the endpoint answered; it may have arrived",
  };
}

// Deno throws `TypeError("fetch failed")` whose cause reads like
// `error sending request for url (…): client error (Connect): tcp connect error: …`.
// Only the part after "client error (…): " is matched, so a host name such as
// "tls.example.com" in the URL cannot change the class.
export function networkFailure(error: unknown, url: string): AttemptFailure {
  const detail = errorDetail(error);
  const host = URL.parse(url)?.host ?? url;
  if (/connection refused/i.test(detail)) {
    return { errorClass: "connection_refused", error: `Connection refused by "${host}"` };
  }
  if (/dns error|failed to lookup address/i.test(detail)) {
    return { errorClass: "dns", error: `Could not resolve "${host}": ${detail}` };
  }
  if (/certificate|tls|ssl|handshake|corrupt message/i.test(detail)) {
    return { errorClass: "tls", error: `TLS with "${host}" failed: ${detail}` };
  }
  return { errorClass: "connection", error: `Request to "${host}" failed: ${detail}` };
}

function errorDetail(error: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) messages.push(e.message);
  // The innermost message is the most specific one; "fetch failed" says nothing.
  const message = messages.at(-1) ?? String(error);
  // It may quote what the endpoint sent.
  return toStorable(/client error \([^)]*\): (.*)$/s.exec(message)?.[1] ?? message);
}

/**
 * The first `limit` bytes of a body, decoded as UTF-8 and made storable, at most `limit` bytes
 * once made so; null without a body.
 */
export async function readPrefix(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<string | null> {
  if (body === null) return null;
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
  } catch {
    // The status already decides the outcome; a body cut short by the timeout
    // or a dropped connection still leaves what arrived worth keeping.
  } finally {
    // Cancelling frees the connection and the rest of the body; it is a no-op once read to the
    // end, and rejects on a stream that already errored, which is fine to ignore.
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(length, limit));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.length;
  }
  // A character cut at the limit is left out (a streaming decode keeps it back), so the text fits
  // in `limit` bytes until NULs are spelled out; the clip bounds that too. One the body itself
  // ends in the middle of is invalid UTF-8, and becomes U+FFFD.
  const cut = length > limit;
  return clip(toStorable(new TextDecoder().decode(bytes, { stream: cut })), limit);
}

function keptHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  let budget = MAX_HEADER_BYTES;
  for (const name of KEPT_RESPONSE_HEADERS) {
    const value = headers.get(name);
    if (value === null) continue;
    kept[name] = clip(toStorable(value), Math.max(0, budget - name.length));
    budget -= name.length + utf8.encode(kept[name]).length;
  }
  return kept;
}

const utf8 = new TextEncoder();
// 3 bytes in UTF-8.
const ELLIPSIS = "…";

/**
 * `text` if its UTF-8 form fits in `maxBytes`; otherwise as much of its start as fits with
 * "…" (3 bytes), cut between characters.
 */
export function clip(text: string, maxBytes: number): string {
  // A string of n UTF-16 units takes at most 3n bytes: most texts are let through uncounted.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = utf8.encode(text);
  if (bytes.length <= maxBytes) return text;
  if (maxBytes < 3) return "";
  // A streaming decode holds back a character cut in half instead of turning it into U+FFFD.
  return new TextDecoder().decode(bytes.subarray(0, maxBytes - 3), { stream: true }) + ELLIPSIS;
}

/**
 * Parses Retry-After as delta-seconds or an HTTP date; null when it is neither.
 * `Headers.get()` has already trimmed the value.
 */
function parseRetryAfter(value: string, nowMs: number): number | null {
  if (/^\d+$/.test(value)) {
    const ms = Number(value) * 1000;
    return Number.isFinite(ms) ? ms : null;
  }
  // Date.parse accepts far more than HTTP dates (e.g. "-5"); all three HTTP date formats
  // start with a day name.
  if (!/^(mon|tue|wed|thu|fri|sat|sun)/i.test(value)) return null;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}

function portOf(url: string): number {
  const { port, protocol } = new URL(url);
  return port === "" ? (protocol === "https:" ? 443 : 80) : Number(port);
}

function elapsedMs(start: number): number {
  return Math.max(0, Math.round(performance.now() - start));
}
