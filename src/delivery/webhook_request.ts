import type { ClaimedDelivery } from "../engine/shapes.ts";
import { VERSION } from "../version.ts";
import type { WebhookRequest } from "./send.ts";
import { sign } from "./signature.ts";
import { webhookBody } from "./webhook_body.ts";

/**
 * The request an endpoint receives: the body in the subscription's format,
 * its custom headers, the `X-Dispatch-*` headers and the Standard Webhooks
 * headers, signed with every active secret of the subscription.
 * `headers` are opened: sensitive values no longer sealed.
 */
export async function buildRequest(
  delivery: ClaimedDelivery & { url: string },
  options: { now?: number } = {},
): Promise<WebhookRequest> {
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000);
  const { body, contentType } = webhookBody(delivery, delivery.format);
  const signature = await sign(delivery.secrets, { id: delivery.event_id, timestamp, body });
  const ts = String(timestamp);
  return {
    url: delivery.url,
    body,
    headers: {
      // Validation refuses every name below, so Dispatch's own cannot be overridden.
      ...delivery.headers,
      "content-type": contentType,
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
