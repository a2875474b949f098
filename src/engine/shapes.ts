/**
 * The shapes that cross layers with a claimed delivery: what a claim hands
 * a worker, and what the worker hands back. Types only, a leaf module, so
 * `src/delivery/` (pure) can speak of them without importing any SQL.
 *
 * @module
 */
import type { Verdict } from "./states.ts";

/** A claim: the delivery and the attempt number that is the lease's token. */
export interface Lease {
  id: number;
  attempt: number;
}

/** A delivery claimed by a worker, with everything needed to send it. */
export interface ClaimedDelivery {
  id: number;
  event_id: string;
  subscription_id: string;
  /** The subscription as it existed at fan-out; null when it was deleted before version 3. */
  subscription_seq: number | null;
  /** The subscription's tenant; null without one (or when it was deleted). */
  tenant_id: string | null;
  /** Number of this attempt, 1-based, counted over the delivery's life: the lease's token. */
  attempt: number;
  /** Whether this attempt spends the last of the attempt budget. */
  last_attempt: boolean;
  /**
   * Wait this long from the claim's answer before sending (the
   * subscription's rate limit paces it); null: at once. Counted by the
   * database's clock as it answers, never against the worker's clock.
   */
  send_in_ms: number | null;
  /**
   * The subscription's circuit was closed with no failure counted when claimed:
   * a success changes nothing about its health, so its result needs no health write.
   */
  healthy: boolean;
  type: string;
  source: string | null;
  created_at: Date;
  /** The event's data as JSON text, sent as is. */
  data: string;
  /** Null when the subscription was deleted after fan-out. */
  url: string | null;
  active: boolean | null;
  /** Stored (possibly sealed) secrets that sign this attempt: current, and previous in its grace. */
  secrets: string[];
  /** How the endpoint wants Dispatch to authenticate; null: it does not. */
  auth: EndpointAuth | null;
  /** The secret part of `auth` as stored (possibly sealed); null when `auth` is. */
  auth_secret: string | null;
  /** The client certificate to present: PEM chain, stored (possibly sealed) key; null: none. */
  tls_client_certificate: { fingerprint: string; cert: string; key: string } | null;
  /** The subscription's custom headers, as stored: sensitive values possibly sealed. Null when it was deleted. */
  headers: Record<string, string> | null;
  /** The body the endpoint receives: the event envelope, or a CloudEvent. */
  format: "standard" | "cloudevents" | null;
}

/**
 * A subscription's endpoint authentication as stored and shown, without its
 * secret part (password, token, client secret), which is stored apart, sealed.
 */
export type EndpointAuth =
  | { type: "basic"; username: string }
  | { type: "bearer" }
  | {
    type: "oauth2_client_credentials";
    token_url: string;
    client_id: string;
    scope: string | null;
    audience: string | null;
    client_auth: "basic" | "post";
  };

/** The outcome of one claimed delivery, written back by the completer. */
export interface Completion {
  deliveryId: number;
  eventId: string;
  subscriptionId: string;
  subscriptionSeq: number | null;
  attempt: number;
  status: "delivered" | "retrying" | "failed";
  /** For `retrying`: when to try again, in ms from now. */
  retryInMs: number;
  /** Null when nothing was sent (abandon: the subscription was gone or disabled). */
  record: AttemptRecord | null;
  lastError: string | null;
  lastStatusCode: number | null;
  /** What the attempt says about the endpoint's health; null when it says nothing (not sent, or stopped by us). */
  verdict: Verdict | null;
  /** The subscription was healthy when this was claimed (see {@linkcode ClaimedDelivery.healthy}). */
  healthy: boolean;
}

export interface AttemptRecord {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  responseHeaders: Record<string, string>;
}
