/**
 * The body an endpoint receives, in its subscription's `format`: the event
 * envelope (`standard`) or a CloudEvents 1.0 event in structured mode
 * (`cloudevents`). The event's `data` is JSON text from the database,
 * spliced in rather than re-encoded.
 *
 * @module
 */
import type { ClaimedDelivery } from "../engine/shapes.ts";

export const formats = ["standard", "cloudevents"] as const;
export type Format = typeof formats[number];

type Event = Pick<ClaimedDelivery, "event_id" | "type" | "source" | "created_at" | "data"> & {
  tenant_id: string | null;
};

/** The body and its content type. */
export function webhookBody(
  event: Event,
  format: Format | null,
): { body: string; contentType: string } {
  const j = JSON.stringify;
  const time = j(event.created_at.toISOString());
  if (format !== "cloudevents") {
    return {
      contentType: "application/json",
      body: `{"id":${j(event.event_id)},"type":${j(event.type)},"source":${
        j(event.source)
      },"timestamp":${time},"data":${event.data}}`,
    };
  }
  const tenant = event.tenant_id === null ? "" : `,"tenantid":${j(event.tenant_id)}`;
  return {
    contentType: "application/cloudevents+json",
    body: `{"specversion":"1.0","id":${j(event.event_id)},"type":${j(event.type)},"source":${
      j(event.source ?? "dispatch")
    },"time":${time},"datacontenttype":"application/json"${tenant},"data":${event.data}}`,
  };
}
