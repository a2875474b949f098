import type { ClaimedDelivery } from "../engine/shapes.ts";
import { VERSION } from "../version.ts";
import type { WebhookRequest } from "./send.ts";
import { sign } from "./signature.ts";

/**
 * The request an endpoint receives: the event envelope as the body, the
 * `X-Dispatch-*` headers and the Standard Webhooks headers, signed with every
 * active secret of the subscription.
 */
export async function buildRequest(
  delivery: ClaimedDelivery & { url: string },
  options: { now?: number } = {},
): Promise<WebhookRequest> {
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000);
  // `data` is already JSON text from the database: splice it in rather than re-encode it.
  const body = `{"id":${JSON.stringify(delivery.event_id)},"type":${
    JSON.stringify(delivery.type)
  },"source":${JSON.stringify(delivery.source)},"timestamp":${
    JSON.stringify(delivery.created_at.toISOString())
  },"data":${delivery.data}}`;
  const signature = await sign(delivery.secrets, { id: delivery.event_id, timestamp, body });
  const ts = String(timestamp);
  return {
    url: delivery.url,
    body,
    headers: {
      "content-type": "application/json",
      "user-agent": `Dispatch/${VERSION}`,
      "webhook-id": delivery.event_id,
      "webhook-timestamp": ts,
      "webhook-signature": signature,
      "x-dispatch-event-id": delivery.event_id,
      "x-dispatch-event-type": delivery.type,
      "x-dispatch-timestamp": ts,
      "x-dispatch-signature": signature,
      "x-dispatch-attempt": String(delivery.attempt),
      "x-dispatch-subscription-id": delivery.subscription_id,
    },
  };
}
