import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../src/config.ts";
import { loggableSettings } from "../src/observability/settings.ts";

/** The least a production configuration needs. */
const production = {
  DISPATCH_ENV: "production",
  DISPATCH_API_KEYS: "a-production-key-of-32-characters",
  DATABASE_URL: "postgres://dispatch@db/dispatch",
};

const configError = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof ConfigError, String(err));
  assert.match(err.message, pattern);
  return true;
};

Deno.test("production refuses to start without API keys", () => {
  assert.throws(
    () => loadConfig({ DISPATCH_ENV: "production" }),
    configError(/^Missing DISPATCH_API_KEYS: it is required when DISPATCH_ENV=production/),
  );
  assert.throws(
    () => loadConfig({ DISPATCH_ENV: "production", DISPATCH_API_KEYS: " , ," }),
    configError(/Missing DISPATCH_API_KEYS/),
  );
});

Deno.test("production refuses to start on the embedded database", () => {
  const { DATABASE_URL: _, ...embedded } = production;
  assert.throws(
    () => loadConfig(embedded),
    configError(
      /^Missing DATABASE_URL: it is required when DISPATCH_ENV=production \(postgres:\/\/… of the PostgreSQL server\)/,
    ),
  );
  assert.equal(loadConfig(production).database.url, production.DATABASE_URL);
});

Deno.test("production refuses a short API key without quoting it", () => {
  const env = {
    ...production,
    DISPATCH_API_KEYS: "long-enough-production-key,short1",
  };
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      configError(/^Invalid DISPATCH_API_KEYS: key 2 is shorter than 16 characters/)(err);
      assert.ok(!(err as Error).message.includes("short1"));
      return true;
    },
  );
  // Development takes any key: tests and local runs use short ones.
  assert.deepEqual(loadConfig({ DISPATCH_API_KEYS: "short1" }).http.apiKeys, ["short1"]);
});

Deno.test("production refuses private targets unless told otherwise; development allows them", () => {
  assert.equal(loadConfig(production).security.allowPrivateTargets, false);
  assert.equal(
    loadConfig({ ...production, ALLOW_PRIVATE_TARGETS: "true" }).security.allowPrivateTargets,
    true,
  );
  assert.equal(loadConfig({}).security.allowPrivateTargets, true);
  assert.equal(loadConfig({ ALLOW_PRIVATE_TARGETS: "0" }).security.allowPrivateTargets, false);
});

Deno.test("API keys are split on commas with whitespace trimmed and empty entries dropped", () => {
  const config = loadConfig({ DISPATCH_API_KEYS: " key-one ,\tkey-two\n,, " });
  assert.deepEqual(config.http.apiKeys, ["key-one", "key-two"]);
});

Deno.test("an API key with a space inside is refused without quoting the keys", () => {
  assert.throws(
    () => loadConfig({ DISPATCH_API_KEYS: "good-key,bad key" }),
    (err: unknown) => {
      configError(/^Invalid DISPATCH_API_KEYS: expected comma-separated keys/)(err);
      assert.ok(!(err as Error).message.includes("good-key"));
      return true;
    },
  );
});

Deno.test("ALLOWED_TARGET_CIDRS takes comma-separated ranges and names a bad one", () => {
  const config = loadConfig({ ALLOWED_TARGET_CIDRS: "10.0.0.0/8, fd00::/8,192.168.1.5" });
  assert.deepEqual(config.security.allowedTargetCidrs.map(String), [
    "10.0.0.0/8",
    "fd00::/8",
    "192.168.1.5/32",
  ]);
  assert.deepEqual(loadConfig({}).security.allowedTargetCidrs, []);
  assert.throws(
    () => loadConfig({ ALLOWED_TARGET_CIDRS: "10.0.0.0/8,10.0.0.0/33" }),
    configError(/^Invalid ALLOWED_TARGET_CIDRS ".*": "10\.0\.0\.0\/33" has a prefix length/),
  );
  assert.throws(
    () => loadConfig({ ALLOWED_TARGET_CIDRS: "intranet" }),
    configError(/"intranet" is not a CIDR range: expected e\.g\. "10\.0\.0\.0\/8"/),
  );
  assert.throws(
    () => loadConfig({ ALLOWED_TARGET_CIDRS: "10.1.0.0/8" }),
    configError(/did you mean "10\.0\.0\.0\/8"/),
  );
});

Deno.test("DISPATCH_SECRETS_KEY must be base64 of 32 bytes and is never quoted back", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  assert.deepEqual(loadConfig({ DISPATCH_SECRETS_KEY: key.toBase64() }).security.secretsKey, key);
  assert.equal(loadConfig({}).security.secretsKey, null);
  const short = key.slice(0, 31).toBase64();
  for (const bad of [short, "correct-horse-battery-staple!"]) {
    assert.throws(
      () => loadConfig({ DISPATCH_SECRETS_KEY: bad }),
      (err: unknown) => {
        configError(/^Invalid DISPATCH_SECRETS_KEY: expected base64 of 32/)(err);
        assert.ok(!(err as Error).message.includes(bad));
        return true;
      },
    );
  }
});

Deno.test("a bad DATABASE_URL is named without repeating it, since it may hold a password", () => {
  assert.throws(
    () => loadConfig({ DATABASE_URL: "mysql://app:hunter2@db/app" }),
    (err: unknown) => {
      configError(/^Invalid DATABASE_URL: expected a postgres:\/\/ URL$/)(err);
      assert.ok(!(err as Error).message.includes("hunter2"));
      return true;
    },
  );
});

Deno.test("DATABASE_READ_URL is optional, needs DATABASE_URL, and is never repeated when bad", () => {
  const url = "postgres://app@db/app";
  assert.equal(loadConfig({ DATABASE_URL: url }).database.readUrl, null);
  assert.equal(
    loadConfig({ DATABASE_URL: url, DATABASE_READ_URL: "postgres://app@replica/app" }).database
      .readUrl,
    "postgres://app@replica/app",
  );
  assert.throws(
    () => loadConfig({ DATABASE_READ_URL: "postgres://app@replica/app" }),
    configError(/^Invalid DATABASE_READ_URL: it needs DATABASE_URL/),
  );
  assert.throws(
    () => loadConfig({ DATABASE_URL: url, DATABASE_READ_URL: "mysql://app:hunter2@replica/app" }),
    (err: unknown) => {
      configError(/^Invalid DATABASE_READ_URL: expected a postgres:\/\/ URL$/)(err);
      assert.ok(!(err as Error).message.includes("hunter2"));
      return true;
    },
  );
});

Deno.test("METRICS_PUBLIC defaults to true outside production and RETENTION_DAYS to off; bad values are named", () => {
  const defaults = loadConfig({});
  assert.equal(defaults.http.metricsPublic, true);
  assert.equal(loadConfig(production).http.metricsPublic, false);
  assert.equal(loadConfig({ ...production, METRICS_PUBLIC: "true" }).http.metricsPublic, true);
  assert.equal(defaults.worker.retentionDays, null);
  const set = loadConfig({ METRICS_PUBLIC: "false", RETENTION_DAYS: "30" });
  assert.equal(set.http.metricsPublic, false);
  assert.equal(set.worker.retentionDays, 30);
  assert.equal(loadConfig({ RETENTION_DAYS: "0.01" }).worker.retentionDays, 0.01);
  assert.throws(
    () => loadConfig({ RETENTION_DAYS: "0" }),
    configError(/^Invalid RETENTION_DAYS "0"/),
  );
  assert.throws(
    () => loadConfig({ RETENTION_DAYS: "1e3" }),
    configError(/^Invalid RETENTION_DAYS "1e3": expected a number of days/),
  );
  assert.throws(
    () => loadConfig({ METRICS_PUBLIC: "no" }),
    configError(/^Invalid METRICS_PUBLIC "no": expected true or false/),
  );
});

Deno.test("AUDIT_RETENTION_DAYS defaults to 90 days; a bad value is named", () => {
  assert.equal(loadConfig({}).worker.auditRetentionDays, 90);
  assert.equal(loadConfig({ AUDIT_RETENTION_DAYS: "7" }).worker.auditRetentionDays, 7);
  assert.throws(
    () => loadConfig({ AUDIT_RETENTION_DAYS: "0" }),
    configError(/^Invalid AUDIT_RETENTION_DAYS "0"/),
  );
});

Deno.test("outside production an unset ADDR listens on loopback only; production on every interface", () => {
  const dev = loadConfig({});
  assert.deepEqual([dev.http.hostname, dev.http.port], ["127.0.0.1", 8080]);
  const prod = loadConfig(production);
  assert.deepEqual([prod.http.hostname, prod.http.port], ["0.0.0.0", 8080]);
  const everywhere = loadConfig({ ADDR: ":8080" });
  assert.deepEqual([everywhere.http.hostname, everywhere.http.port], ["0.0.0.0", 8080]);
});

Deno.test("a number out of range is refused in plain words", () => {
  assert.throws(
    () => loadConfig({ WORKER_CONCURRENCY: "0" }),
    configError(/^Invalid WORKER_CONCURRENCY "0": must be at least 1$/),
  );
  assert.throws(
    () => loadConfig({ DISPATCH_ENV: "staging" }),
    configError(/^Invalid DISPATCH_ENV "staging": must be one of "development", "production"$/),
  );
});

Deno.test("DELIVERY_PROXY_URL is an http:// URL with optional credentials; a bad one is refused without repeating it, and settings never print its password", () => {
  const { proxy } = loadConfig({
    DELIVERY_PROXY_URL: "http://egress:p%40ss-w0rd@proxy.internal:3128",
  }).delivery;
  assert.deepEqual(proxy, {
    hostname: "proxy.internal",
    port: 3128,
    username: "egress",
    password: "p@ss-w0rd",
  });
  assert.deepEqual(loadConfig({ DELIVERY_PROXY_URL: "http://[::1]" }).delivery.proxy, {
    hostname: "::1",
    port: 80,
    username: null,
    password: null,
  });
  for (
    const bad of [
      "https://u:hunter22@proxy:3128",
      "socks5://u:hunter22@proxy:1080",
      "http://u:hunter22@proxy:3128/path",
    ]
  ) {
    assert.throws(() => loadConfig({ DELIVERY_PROXY_URL: bad }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^Invalid DELIVERY_PROXY_URL: expected/);
      assert.ok(!err.message.includes("hunter22"), err.message);
      return true;
    });
  }
  const config = loadConfig({ DELIVERY_PROXY_URL: "http://egress:hunter22@proxy.internal:3128" });
  const printed = JSON.stringify(loggableSettings(config));
  assert.ok(!printed.includes("hunter22"), printed);
  assert.ok(printed.includes('"password_set":true'), printed);
});
