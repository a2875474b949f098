/**
 * The delivery lifecycle: every state a delivery can be in, and every
 * transition between them, each with its name and why it happens. The
 * statements that make them are in `src/db/queue.ts`, `src/db/deliveries.ts`
 * and `src/db/subscriptions.ts`, named after these transitions.
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
