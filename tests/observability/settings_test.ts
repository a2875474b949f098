import assert from "node:assert/strict";
import { loggableSettings } from "../../src/observability/settings.ts";

/** Like a parsed CIDR setting: a class instance that prints as its text. */
class Range {
  constructor(readonly text: string) {}
  toString() {
    return this.text;
  }
}

Deno.test("loggable settings show counts instead of keys and URLs without passwords", () => {
  const fields = loggableSettings({
    apiKeys: ["key-one", "key-two"],
    databaseUrl: "postgres://dispatch:hunter2@db:5432/dispatch",
    secretsEncryptionKey: "c2VjcmV0LWtleS1tYXRlcmlhbA==",
    previousToken: null,
    workerConcurrency: 64,
    nested: { signingSecret: "whsec_abc", timeoutMs: 5 },
    allowedTargetCidrs: [new Range("10.0.0.0/8")],
  });
  assert.deepEqual(fields, {
    api_keys_count: 2,
    database_url: "postgres://dispatch:***@db:5432/dispatch",
    secrets_encryption_key_set: true,
    previous_token_set: false,
    worker_concurrency: 64,
    nested: { signing_secret_set: true, timeout_ms: 5 },
    allowed_target_cidrs: ["10.0.0.0/8"],
  });
  const text = JSON.stringify(fields);
  for (const secret of ["key-one", "key-two", "hunter2", "c2VjcmV0", "whsec_abc"]) {
    assert.ok(!text.includes(secret), `${secret} leaked`);
  }
});
