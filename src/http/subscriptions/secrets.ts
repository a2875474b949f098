/**
 * A subscription's signing secret: rotation, with a grace period for the
 * previous one.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { generateSecret } from "../../delivery/signature.ts";
import { notFound } from "../../errors.ts";
import { subscriptionScope } from "./lookup.ts";
import type { AppDeps } from "../deps.ts";
import * as examples from "../examples.ts";
import { jsonResponse } from "../openapi.ts";
import { IdParam } from "../schemas.ts";

const tags = ["Subscriptions"];

const rotate = createRoute({
  method: "post",
  path: "/subscriptions/{id}/rotate-secret",
  tags,
  operationId: "rotateSubscriptionSecret",
  summary: "New secret; the previous one keeps signing for a grace period",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(
      z.object({
        secret: z.string(),
        previous_secret_expires_at: z.string().openapi({ format: "date-time" }),
      }).openapi("RotatedSecret"),
      "The new secret, shown only here",
      { example: examples.rotatedSecret, headers: ["Cache-Control"] },
    ),
  },
});

export function subscriptionSecretsRoutes(deps: AppDeps) {
  const app = new OpenAPIHono();

  app.openapi(rotate, async (c) => {
    const { id } = c.req.valid("param");
    const secret = generateSecret();
    const rotated = await deps.engine.rotateSecret(id, {
      ...await subscriptionScope(c, deps.views, id),
      secret: await deps.secrets.seal(secret),
      graceMs: deps.config.rotationGraceMs,
    });
    if (!rotated) throw notFound("subscription", id);
    c.header("Cache-Control", "no-store");
    return c.json({ secret, ...rotated }, 200);
  });

  return app;
}
