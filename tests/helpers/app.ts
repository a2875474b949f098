import { createApp } from "../../src/http/app.ts";
import type { AppDeps } from "../../src/http/deps.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { type TestDatabase, testDatabase } from "./db.ts";

export interface TestApp {
  db: TestDatabase;
  /** Sends a request to the real app, without a socket. JSON bodies are encoded. */
  call(method: string, path: string, body?: unknown, headers?: HeadersInit): Promise<Response>;
  close(): Promise<void>;
}

export async function testApp(config: Partial<AppDeps["config"]> = {}): Promise<TestApp> {
  const db = await testDatabase();
  const app = createApp({
    sql: db.sql,
    log: silentLogger,
    channel: db.channel,
    config: { maxPayloadBytes: 256 * 1024, apiKeys: [], rotationGraceMs: 86_400_000, ...config },
  });
  return {
    db,
    call(method, path, body, headers) {
      const h = new Headers(headers);
      let payload: string | undefined;
      if (body !== undefined) {
        payload = typeof body === "string" ? body : JSON.stringify(body);
        if (!h.has("content-type")) h.set("content-type", "application/json");
      }
      return Promise.resolve(app.request(path, { method, headers: h, body: payload ?? null }));
    },
    close: () => db.close(),
  };
}

/** Reads the JSON body, asserting nothing about it. */
// deno-lint-ignore no-explicit-any -- tests inspect arbitrary JSON
export async function json(res: Response): Promise<any> {
  return await res.json();
}
