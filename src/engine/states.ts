/**
 * The one list of states: every state a delivery can be in and every
 * transition between them (each with its name and why it happens), what
 * can hold a waiting delivery back, a circuit's states, an event's derived
 * status and an attempt's result classes. A leaf module: the zod enums and
 * TypeScript types are derived from these lists, and a test checks the
 * migrations' CHECK constraints against them. The statements that make the
 * transitions are in `src/engine/`, one family per file, named after them.
 *
 * A claim's lease is `(locked_by, attempts)`: the worker and the attempt
 * number. Every statement that ends a claim (complete, hand back, rescue)
 * matches both, so a late or repeated write never changes a newer claim.
 *
 * @module
 */

export const deliveryStatuses = [
  "pending",
  "processing",
  "delivered",
  "retrying",
  "failed",
] as const;

export type DeliveryStatus = (typeof deliveryStatuses)[number];

export interface Transition {
  from: readonly DeliveryStatus[];
  to: readonly DeliveryStatus[];
  why: string;
}

export const transitions = {
  claim: {
    from: ["pending", "retrying"],
    to: ["processing"],
    why:
      "A worker takes a due delivery with a lease and counts the attempt; the attempt number is the lease's token.",
  },
  deliver: {
    from: ["processing"],
    to: ["delivered"],
    why: "The endpoint answered 2xx.",
  },
  retry: {
    from: ["processing"],
    to: ["retrying"],
    why: "The attempt failed and the attempt budget has attempts left: it waits out the backoff.",
  },
  fail: {
    from: ["processing"],
    to: ["failed"],
    why:
      "The attempt failed with no attempts left, or in a way retrying cannot mend: 410 Gone (which also disables the subscription), a target the SSRF guard refuses, a secret that cannot be decrypted.",
  },
  abandon: {
    from: ["processing"],
    to: ["failed"],
    why:
      "The subscription was deleted or disabled after fan-out: nothing is sent and no attempt is recorded.",
  },
  handBack: {
    from: ["processing"],
    to: ["pending", "retrying"],
    why:
      "A claim that was never sent (claimed during shutdown, or a claim whose answer was lost) goes back at once, its attempt uncounted.",
  },
  rescue: {
    from: ["processing"],
    to: ["retrying", "failed"],
    why:
      "The lease expired (its worker died or lost the database for longer than the lease): a lease_expired attempt is recorded and the budget decides.",
  },
  cancel: {
    from: ["pending", "retrying"],
    to: ["failed"],
    why:
      "The subscription was deleted, or disabled as failing or gone: its waiting deliveries are never attempted again.",
  },
  requeue: {
    from: ["failed"],
    to: ["retrying"],
    why:
      "POST /events/:id/retry, POST /deliveries/:id/retry and POST /subscriptions/:id/recover put failed deliveries of an active subscription back, with a fresh attempt budget.",
  },
} as const satisfies Record<string, Transition>;

/** What holds a waiting delivery back besides its backoff (`deliveries.held_by`). */
export const heldByReasons = ["rate_limit", "max_in_flight", "circuit", "ordering"] as const;
export type HeldBy = (typeof heldByReasons)[number];

/**
 * How a subscription orders its deliveries: `fifo` sends those whose events
 * share an ordering key one at a time, in ingest order (`held_by` 'ordering'
 * parks the ones behind a queue's head).
 */
export const orderings = ["none", "fifo"] as const;
export type Ordering = (typeof orderings)[number];

/** A subscription's circuit breaker: closed → open → half_open (one probe) → closed. */
export const circuitStates = ["closed", "open", "half_open"] as const;
export type CircuitState = (typeof circuitStates)[number];

/** An event's status, derived from its deliveries' (see {@linkcode eventStatusOf}). */
export const eventStatuses = [
  "no_subscribers",
  "pending",
  "processing",
  "retrying",
  "delivered",
  "failed",
] as const;
export type EventStatus = (typeof eventStatuses)[number];

/**
 * The status of an event with these delivery counts: `processing` if any is
 * processing, then `retrying`, `pending`, `failed`, and `delivered` when all
 * were; `no_subscribers` when it has none. The SQL that lists events renders
 * the same precedence, so the rule is written once.
 */
export function eventStatusOf(counts: Record<DeliveryStatus, number>): EventStatus {
  return eventStatusPrecedence.find((status) => counts[status] > 0) ?? "no_subscribers";
}

/** The first of these that any delivery of an event has is the event's status. */
export const eventStatusPrecedence = [
  "processing",
  "retrying",
  "pending",
  "failed",
  "delivered",
] as const satisfies readonly DeliveryStatus[];

/** Why an attempt failed, coarse enough to aggregate in metrics and show to endpoint owners. */
export const attemptErrorClasses = [
  "timeout",
  "connection_refused",
  "dns",
  "tls",
  "connection",
  "http_status",
  "redirect",
  /** Cut off by shutdown after the request was handed to the network: it may have arrived. */
  "aborted",
  /** Refused by the SSRF guard before connecting: nothing was sent. */
  "blocked",
  /** The subscription's signing secret could not be decrypted: nothing was sent. */
  "secret_unreadable",
  /** The OAuth token request failed: nothing, or nothing more, was sent to the endpoint. */
  "auth_failed",
  /** Written by the rescuer for an attempt whose worker never reported back. */
  "lease_expired",
] as const;
export type AttemptErrorClass = (typeof attemptErrorClasses)[number];

/**
 * An attempt as the circuit breaker sees it: a 2xx, a failure (timeout,
 * connection error, 5xx, 429), another answer (a 4xx, a redirect), or 410 Gone.
 */
export const verdicts = ["success", "failure", "answer", "gone"] as const;
export type Verdict = (typeof verdicts)[number];
