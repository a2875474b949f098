/** The README's story (subscription `sub_demo`, event `evt_123`) as the OpenAPI document's examples. */

const at = "2026-11-26T10:00:00.000Z";
const later = "2026-11-26T10:00:01.212Z";

export const newEvent = {
  id: "evt_123",
  type: "order.created",
  source: "billing-service",
  data: { order_id: 42 },
};

export const event = {
  ...newEvent,
  tenant_id: null,
  ordering_key: null,
  created_at: at,
  status: "pending" as const,
  deliveries: { total: 1, pending: 1, processing: 0, retrying: 0, delivered: 0, failed: 0 },
};

export const eventBatch = {
  events: [newEvent, { type: "order.paid", source: "billing-service", data: { order_id: 42 } }],
};

export const newSubscription = {
  id: "sub_demo",
  url: "https://example.com/webhooks",
  event_types: ["order.*"],
};

export const subscription = {
  ...newSubscription,
  tenant_id: null,
  description: null,
  active: true,
  disabled_reason: null,
  max_attempts: null,
  rate_limit: null,
  max_in_flight: null,
  ordering: "none" as const,
  circuit: {
    state: "closed" as const,
    consecutive_failures: 0,
    opened_at: null,
    next_probe_at: null,
  },
  metadata: {},
  auth: null,
  tls_client_certificate: {
    subject: "CN=dispatch.example.com, O=Example",
    issuer: "CN=Example Partner CA",
    not_after: "2027-11-27T10:00:00.000Z",
    fingerprint_sha256:
      "3F:A1:0C:5E:9B:27:D4:88:61:F0:2A:7C:B3:15:E9:4D:C2:76:08:AB:91:5F:E3:3D:47:0A:B8:6C:12:D5:F9:E0",
  },
  headers: { "x-tenant-region": "eu-west-1", "x-api-key": "***" },
  filter: '$.data.amount >= 100 && $.data.currency == "EUR"',
  format: "standard" as const,
  created_at: at,
  updated_at: at,
};

export const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

export const rotatedSecret = {
  secret: "whsec_3NdxZWM8JCgVLn5dwbP8Orh2IfM6ZizE",
  previous_secret_expires_at: "2026-11-27T10:00:00.000Z",
};

export const delivery = {
  id: 17,
  event_id: "evt_123",
  subscription_id: "sub_demo",
  status: "retrying" as const,
  attempts: 1,
  next_attempt_at: "2026-11-26T10:00:02.000Z",
  held_by: null,
  last_status_code: 503,
  last_error: "Endpoint answered 503",
  delivered_at: null,
  created_at: at,
  updated_at: later,
};

export const attempt = {
  id: 1,
  subscription_id: "sub_demo",
  attempt: 1,
  started_at: at,
  duration_ms: 212,
  status_code: 503,
  error_class: "http_status",
  error: "Endpoint answered 503",
  response_body: "Service Unavailable",
  response_headers: { "retry-after": "1" },
};

export const webhookTimestamp = "1795687200";
export const webhookSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

export const deadLetter = {
  ...delivery,
  status: "failed" as const,
  attempts: 8,
  next_attempt_at: null,
  last_error: 'Connection refused by "example.com"',
  last_status_code: null,
};

export const stats = {
  window: "24h" as const,
  attempts: { success: 1182, http_status: 14, timeout: 3 },
  success_rate: 0.9858,
  latency_ms: { p50: 41, p95: 212 },
  last_success_at: later,
  last_failure_at: at,
};

export const tenant = {
  id: "acme",
  subscriptions: 2,
  events: 1250,
  deliveries: { pending: 3, processing: 1, retrying: 2, delivered: 2480, failed: 14 },
};

export const newApiKey = {
  scope: "tenant" as const,
  tenant_id: "acme",
  description: "Acme's portal",
  expires_at: "2027-11-26T10:00:00.000Z",
};

export const apiKey = {
  id: "key_0mx564f5bvg9632tupetpadd0",
  scope: "tenant" as const,
  tenant_id: "acme",
  description: "Acme's portal",
  created_at: at,
  expires_at: "2027-11-26T10:00:00.000Z",
};

export const apiKeyToken = "dk_Xq3bZ0k9yQm7Vt2LrW8sNc4Hj6Pd1Fg5Ae0Ui9Oy3Tb";

export const bulkRetry = {
  status: "failed" as const,
  subscription_id: "sub_demo",
  since: "2026-11-26T00:00:00Z",
  dry_run: true,
};

export const auditEntry = {
  id: 1042,
  at: later,
  actor: { type: "api_key" as const, key_id: "key_0mx564f5bvg9632tupetpadd0", tenant_id: "acme" },
  action: "updateSubscription",
  resource: { type: "subscription", id: "sub_demo" },
  tenant_id: "acme",
  status: 200,
  request_id: "5f0e7a52-7d1c-4c55-9a62-0c4b3f6f8f11",
};

export const filterTest = {
  filter: '$.data.amount >= 100 && $.data.currency == "EUR"',
  event: { type: "order.created", data: { amount: 120, currency: "EUR" } },
};

export const newEventType = {
  name: "order.created",
  description: "An order was placed",
  schema: {
    type: "object",
    properties: { order_id: { type: "integer" } },
    required: ["order_id"],
  },
  example: { order_id: 42 },
};

export const eventType = {
  ...newEventType,
  deprecated: false,
  created_at: at,
  updated_at: at,
};

export const portalSession = {
  url: "https://dispatch.example.com/console/portal?token=eyJ1c2UiOiJwb3J0YWwi.q3XsQ9nRk1",
  expires_at: "2026-11-26T11:00:00.000Z",
};
