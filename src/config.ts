import { z } from "zod";
import { type Cidr, parseCidr } from "./security/ip.ts";
import { parseSecretsKey } from "./security/secret_cipher.ts";

/** Effective settings, parsed once from the environment at start-up. */
export interface Config {
  env: "development" | "production";
  databaseUrl: string | null;
  /** Schema to use instead of the search_path default (lets tests share a server). */
  schema: string | null;
  dataDir: string;
  hostname: string;
  port: number;
  apiKeys: string[];
  logLevel: LogLevel;
  workerConcurrency: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  deliveryTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** The server cancels any statement that runs longer; 0 never does. */
  statementTimeoutMs: number;
  /** An API request not answered by then (the database is away) answers 503. */
  requestTimeoutMs: number;
  maxPayloadBytes: number;
  allowPrivateTargets: boolean;
  /** Allowed even when private targets are not. */
  allowedTargetCidrs: Cidr[];
  /** AES-256 key that encrypts subscription secrets at rest; null stores them as they are. */
  secretsKey: Uint8Array<ArrayBuffer> | null;
  pollIntervalMs: number;
  rotationGraceMs: number;
  /** False puts /metrics behind the API keys. */
  metricsPublic: boolean;
  /** Finished events older than this many days are deleted; null keeps everything. */
  retentionDays: number | null;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export class ConfigError extends Error {
  override name = "ConfigError";
}

const int = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, `expected a whole number from ${min} to ${max}`)
    .transform(Number).pipe(z.number().min(min).max(max));

const bool = z.enum(["true", "false", "1", "0"], { error: "expected true or false" })
  .transform((v) => v === "true" || v === "1");

const addr = z.string().trim().regex(
  /^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/,
  'expected "host:port" or ":port", e.g. ":8080"',
);

const commaList = (text: string) => text.split(",").map((e) => e.trim()).filter(Boolean);

/** A zod schema from a parser that answers a value, or an error message. */
const parsedBy = <T>(parse: (text: string) => T | string) =>
  z.string().transform((text, ctx) => {
    const value = parse(text);
    if (typeof value !== "string") return value;
    ctx.addIssue({ code: "custom", message: value });
    return z.NEVER;
  });

// Spaces around a key are ignored; inside one they could never match a Bearer header.
const keyList = z.string().transform(commaList).refine(
  (keys) => keys.every((k) => /^[\x21-\x7e]+$/.test(k)),
  "expected comma-separated keys of printable ASCII without spaces",
);

const cidrList = parsedBy((text) => {
  const ranges: Cidr[] = [];
  for (const entry of commaList(text)) {
    const cidr = parseCidr(entry);
    if (typeof cidr === "string") return cidr;
    ranges.push(cidr);
  }
  return ranges;
});

const secretsKey = parsedBy(parseSecretsKey);

const minProductionKeyLength = 16;

// Values that may hold credentials, never repeated in an error message.
const secretVariables = new Set(["DATABASE_URL", "DISPATCH_API_KEYS", "DISPATCH_SECRETS_KEY"]);

// Each variable: its schema and default (string, parsed like user input).
const variables = {
  DISPATCH_ENV: [z.enum(["development", "production"]), "development"],
  DATABASE_URL: [z.string().trim().regex(/^postgres(ql)?:\/\//, "expected a postgres:// URL")],
  DATABASE_SCHEMA: [
    z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "expected a lowercase SQL identifier"),
  ],
  DISPATCH_DATA_DIR: [z.string().min(1), ".dispatch-data"],
  ADDR: [addr, ":8080"],
  DISPATCH_API_KEYS: [keyList],
  DISPATCH_SECRETS_KEY: [secretsKey],
  LOG_LEVEL: [z.enum(["debug", "info", "warn", "error"]), "info"],
  WORKER_CONCURRENCY: [int(1, 10_000), "64"],
  MAX_ATTEMPTS: [int(1, 100), "8"],
  RETRY_BASE_DELAY_MS: [int(1, 86_400_000), "1000"],
  RETRY_MAX_DELAY_MS: [int(1, 604_800_000), "3600000"],
  DELIVERY_TIMEOUT_MS: [int(100, 600_000), "30000"],
  SHUTDOWN_TIMEOUT_MS: [int(0, 600_000), "10000"],
  STATEMENT_TIMEOUT_MS: [int(0, 3_600_000), "30000"],
  REQUEST_TIMEOUT_MS: [int(100, 600_000), "5000"],
  MAX_PAYLOAD_BYTES: [int(1024, 64 * 1024 * 1024), String(256 * 1024)],
  ALLOW_PRIVATE_TARGETS: [bool],
  ALLOWED_TARGET_CIDRS: [cidrList],
  POLL_INTERVAL_MS: [int(10, 60_000), "1000"],
  SECRET_ROTATION_GRACE_MS: [int(0, 30 * 86_400_000), String(86_400_000)],
  METRICS_PUBLIC: [bool, "true"],
  RETENTION_DAYS: [int(1, 36_500)],
} as const satisfies Record<string, readonly [z.ZodType, string?]>;

type Vars = typeof variables;
type Parsed = { [K in keyof Vars]: z.output<Vars[K][0]> | undefined };

/**
 * Parses the environment. Throws a {@linkcode ConfigError} naming the first
 * bad variable and what it accepts.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const v = {} as Record<string, unknown>;
  for (const [name, [schema, fallback]] of Object.entries(variables)) {
    const raw = env[name] === undefined || env[name] === "" ? fallback : env[name];
    if (raw === undefined) continue;
    const result = (schema as z.ZodType).safeParse(raw);
    if (!result.success) {
      const why = result.error.issues[0]?.message ?? "invalid value";
      const shown = secretVariables.has(name) ? "" : ` "${raw}"`;
      throw new ConfigError(`Invalid ${name}${shown}: ${why}`);
    }
    v[name] = result.data;
  }
  const p = v as Parsed;
  const production = p.DISPATCH_ENV === "production";
  const apiKeys = p.DISPATCH_API_KEYS ?? [];
  if (production && apiKeys.length === 0) {
    throw new ConfigError(
      "Missing DISPATCH_API_KEYS: it is required when DISPATCH_ENV=production (comma-separated bearer tokens)",
    );
  }
  // A short key can be guessed; the value itself is never repeated.
  const short = apiKeys.findIndex((k) => k.length < minProductionKeyLength);
  if (production && short >= 0) {
    throw new ConfigError(
      `Invalid DISPATCH_API_KEYS: key ${
        short + 1
      } is shorter than ${minProductionKeyLength} characters, too short for production (make one with "openssl rand -hex 32")`,
    );
  }
  if (p.RETRY_BASE_DELAY_MS! > p.RETRY_MAX_DELAY_MS!) {
    throw new ConfigError(
      `Invalid RETRY_BASE_DELAY_MS "${p.RETRY_BASE_DELAY_MS}": it must not exceed RETRY_MAX_DELAY_MS (${p.RETRY_MAX_DELAY_MS})`,
    );
  }
  const [hostname, port] = splitAddr(p.ADDR!);
  return {
    env: p.DISPATCH_ENV!,
    databaseUrl: p.DATABASE_URL ?? null,
    schema: p.DATABASE_SCHEMA ?? null,
    dataDir: p.DISPATCH_DATA_DIR!,
    hostname,
    port,
    apiKeys,
    logLevel: p.LOG_LEVEL!,
    workerConcurrency: p.WORKER_CONCURRENCY!,
    maxAttempts: p.MAX_ATTEMPTS!,
    retryBaseDelayMs: p.RETRY_BASE_DELAY_MS!,
    retryMaxDelayMs: p.RETRY_MAX_DELAY_MS!,
    deliveryTimeoutMs: p.DELIVERY_TIMEOUT_MS!,
    shutdownTimeoutMs: p.SHUTDOWN_TIMEOUT_MS!,
    statementTimeoutMs: p.STATEMENT_TIMEOUT_MS!,
    requestTimeoutMs: p.REQUEST_TIMEOUT_MS!,
    maxPayloadBytes: p.MAX_PAYLOAD_BYTES!,
    allowPrivateTargets: p.ALLOW_PRIVATE_TARGETS ?? !production,
    allowedTargetCidrs: p.ALLOWED_TARGET_CIDRS ?? [],
    secretsKey: p.DISPATCH_SECRETS_KEY ?? null,
    pollIntervalMs: p.POLL_INTERVAL_MS!,
    rotationGraceMs: p.SECRET_ROTATION_GRACE_MS!,
    metricsPublic: p.METRICS_PUBLIC!,
    retentionDays: p.RETENTION_DAYS ?? null,
  };
}

function splitAddr(addr: string): [string, number] {
  const i = addr.lastIndexOf(":");
  const host = addr.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(addr.slice(i + 1));
  if (port > 65535) throw new ConfigError(`Invalid ADDR "${addr}": port must be at most 65535`);
  return [host === "" ? "0.0.0.0" : host, port];
}
