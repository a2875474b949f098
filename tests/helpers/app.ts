import assert from "node:assert/strict";
import { DatabaseOutage } from "../../src/observability/outage.ts";
import { createApp } from "../../src/http/app.ts";
import type { AppDeps } from "../../src/http/deps.ts";
import { type Logger, silentLogger } from "../../src/observability/log.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { ApiKeyTable } from "../../src/security/api_key_table.ts";
import { EventCatalog } from "../../src/http/event_types/catalog.ts";
import { createSecretCipher, type SecretCipher } from "../../src/security/secret_cipher.ts";
import { type TestDatabase, testDatabase } from "./db.ts";
import { requestInit, type Send } from "./http.ts";

export interface TestApp {
  db: TestDatabase;
  /** Sends a request to the real app, without a socket. JSON bodies are encoded. */
  call: Send;
  /** The app's fetch handler, e.g. to serve it on a real socket. */
  fetch(request: Request): Response | Promise<Response>;
  close(): Promise<void>;
}

export async function testApp(
  config: Partial<AppDeps["config"]> = {},
  options: AppOptions = {},
): Promise<TestApp> {
  const db = await testDatabase();
  const app = buildApp(db, config, options);
  return {
    db,
    fetch: (request) => app.fetch(request),
    call: (method, path, body, headers) =>
      Promise.resolve(app.request(path, requestInit(method, body, headers))),
    close: () => db.close(),
  };
}

export interface AppOptions {
  log?: Logger;
  /**
   * The clock API keys expire by and the key table and event-type catalog
   * age by (milliseconds since the epoch); default `Date.now`.
   */
  now?: () => number;
  /** Default: one without a key (secrets stored as given). */
  secrets?: SecretCipher;
  /** Replaces the event-type catalog read from the database. */
  catalog?: EventCatalog;
}

/** The app as the composition root builds it, with the tests' defaults for its settings. */
export function buildApp(
  db: Pick<TestDatabase, "sql" | "engine" | "views">,
  config: Partial<AppDeps["config"]> = {},
  options: AppOptions = {},
) {
  const log = options.log ?? silentLogger;
  const { now } = options;
  const keys = now && new ApiKeyTable((used) => db.engine.readKeyTable(used), { now });
  const catalog = options.catalog ??
    (now && new EventCatalog((known) => db.views.readEventCatalog(known), {
      mode: config.eventTypes ?? "open",
      now,
    }));
  return createApp({
    engine: db.engine,
    views: db.views,
    log,
    outage: new DatabaseOutage(log, { probe: () => db.sql`SELECT 1` }),
    config: {
      env: "development",
      hostname: "127.0.0.1",
      maxPayloadBytes: 256 * 1024,
      requestTimeoutMs: 5000,
      apiKeys: [],
      rotationGraceMs: 86_400_000,
      metricsPublic: true,
      allowPrivateTargets: true,
      allowedTargetCidrs: [],
      actionRateLimit: 0,
      eventTypes: "open",
      consoleSessionKey: null,
      consoleFrameAncestors: [],
      ...config,
    },
    secrets: options.secrets ?? createSecretCipher(null),
    metrics: createMetrics({ inFlight: () => 0, queueStats: () => db.views.queueStats(), log }),
  }, { ...(keys ? { keys } : {}), ...(catalog ? { catalog } : {}) });
}

/** Reads the JSON body, asserting nothing about it. */
// deno-lint-ignore no-explicit-any -- tests inspect arbitrary JSON
export async function json(res: Response): Promise<any> {
  return await res.json();
}

/**
 * Asserts a validation failure that names `field`: 400, code
 * `validation_failed`, a message that starts with it, and `field` in details.
 */
export async function assertInvalidField(res: Response, field: string, what = field) {
  assert.equal(res.status, 400, what);
  const { error } = await json(res);
  assert.equal(error.code, "validation_failed", what);
  assert.ok(error.message.startsWith(`Invalid field "${field}": `), `${what}: ${error.message}`);
  assert.ok(error.details.some((d: { field: string }) => d.field === field), `${what}: details`);
}
