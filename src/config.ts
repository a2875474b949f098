import { createHmac } from "node:crypto";
import { z } from "zod";
import { type Cidr, parseCidr } from "./security/ip.ts";
import "./zod_messages.ts";
import { parseSecretsKey } from "./security/secret_cipher.ts";

/**
 * Effective settings, parsed once from the environment at start-up, by
 * section. Values derived from others (a lease's length, the rescuer's
 * interval, the pool's size) are computed here, once.
 */
export interface Config {
  env: "development" | "production";
  http: HttpSettings;
  security: SecuritySettings;
  delivery: DeliverySettings;
  worker: WorkerSettings;
  database: DatabaseSettings;
  observability: { logLevel: LogLevel };
}

export interface HttpSettings {
  hostname: string;
  port: number;
  apiKeys: string[];
  /** An API request not answered by then (the database is away) answers 503. */
  requestTimeoutMs: number;
  /** A connection whose client takes longer to send a request's head is closed. */
  headerTimeoutMs: number;
  maxPayloadBytes: number;
  /** False puts /metrics behind the API keys; false by default in production. */
  metricsPublic: boolean;
  /** How long a stop lets requests and deliveries in flight finish. */
  shutdownTimeoutMs: number;
  /** Test sends, recoveries and retries per minute per API key; 0 no limit. */
  actionRateLimit: number;
  /** `strict` refuses events whose type is not in the catalog; `open` accepts them unvalidated. */
  eventTypes: "open" | "strict";
  /** Signs console sessions and portal links; null: a random key per process. */
  consoleSessionKey: Uint8Array<ArrayBuffer> | null;
  /** Origins that may frame the console (CSP frame-ancestors); empty: none. */
  consoleFrameAncestors: string[];
}

export interface SecuritySettings {
  allowPrivateTargets: boolean;
  /** Allowed even when private targets are not. */
  allowedTargetCidrs: Cidr[];
  /** AES-256 key that encrypts subscription secrets at rest; null stores them as they are. */
  secretsKey: Uint8Array<ArrayBuffer> | null;
  rotationGraceMs: number;
}

export interface DeliverySettings {
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  deliveryTimeoutMs: number;
  /** Consecutive failed attempts that open a circuit; 0 turns the breaker off. */
  circuitFailureThreshold: number;
  circuitCooldownMs: number;
  circuitMaxCooldownMs: number;
  /** A subscription failing without a success for this long is disabled; 0 never. */
  autoDisableAfterMs: number;
  /** PEM file of CAs trusted for deliveries besides the system's; read at start-up. */
  caFile: string | null;
  /** Every delivery goes through this HTTP proxy, by CONNECT. */
  proxy: ProxySettings | null;
}

/** DELIVERY_PROXY_URL, taken apart; the password is never printed. */
export interface ProxySettings {
  hostname: string;
  port: number;
  username: string | null;
  password: string | null;
}

export interface WorkerSettings {
  concurrency: number;
  pollIntervalMs: number;
  /** How long a claim stays a worker's without renewal: two delivery timeouts and 5 s. */
  leaseMs: number;
  /** How often expired leases are rescued: a quarter of a lease, from 1 s to 30 s. */
  rescueIntervalMs: number;
  /** Finished events older than this many days are deleted; null keeps everything. */
  retentionDays: number | null;
  /** Audit log entries older than this many days are deleted. */
  auditRetentionDays: number;
}

export interface DatabaseSettings {
  url: string | null;
  /** A streaming replica that reads which may lag use (lists, stats, console charts); null: `url`. */
  readUrl: string | null;
  /** Schema to use instead of the search_path default (lets tests share a server). */
  schema: string | null;
  dataDir: string;
  /** The server cancels any statement that runs longer; 0 never does. */
  statementTimeoutMs: number;
  /** Connections in the pool: 4, and one per 16 deliveries in flight, up to 20. */
  poolSize: number;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export class ConfigError extends Error {
  override name = "ConfigError";
}

const int = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, `expected a whole number from ${min} to ${max}`)
    .transform(Number).pipe(z.number().min(min).max(max));

/** Days, whole or not, from a minute to a hundred years. */
const days = z.string().trim().regex(
  /^\d+(\.\d+)?$/,
  "expected a number of days from 0.0007 (a minute) to 36500, e.g. 30 or 0.01",
).transform(Number).pipe(z.number().min(0.0007).max(36_500));

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

const proxyUrl = parsedBy((text): ProxySettings | string => {
  const url = URL.parse(text.trim());
  if (url === null || url.protocol !== "http:" || url.hostname === "") {
    return "expected an http:// URL, e.g. http://user:password@proxy.internal:3128";
  }
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    return "expected only http://, an optional user:password@, a host and a port";
  }
  const part = (text: string) => text === "" ? null : decodeURIComponent(text);
  return {
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port || 80),
    username: part(url.username),
    password: part(url.password),
  };
});

// Origins as CSP source expressions: nothing that could end the directive or add another.
const frameAncestors = z.string().transform((text) => text.split(/[\s,]+/).filter(Boolean))
  .refine(
    (list) => list.every((o) => /^(https?:\/\/(\*\.)?[a-z0-9.-]+(:\d{1,5})?|'self')$/i.test(o)),
    "expected origins such as https://app.example.com, separated by commas or spaces",
  );

const minProductionKeyLength = 16;

const loopbackAddr = "127.0.0.1:8080";

/** One environment variable: how it is parsed, its default, and what it means. */
export interface Variable {
  schema: z.ZodType;
  /** Parsed like user input when the variable is unset or empty. */
  fallback?: string;
  /** The default as `--help` and docs/configuration.md show it, when it is not simply `fallback`. */
  shown?: string;
  about: string;
  /** The value may hold credentials: never repeated in an error message. */
  secret?: true;
}

/** Every variable Dispatch reads; `--help` and the table of docs/configuration.md come from it. */
export const variables = {
  DATABASE_URL: {
    schema: z.string().trim().regex(/^postgres(ql)?:\/\//, "expected a postgres:// URL"),
    shown: "embedded database",
    about: "postgres://… of the PostgreSQL server",
    secret: true,
  },
  DATABASE_READ_URL: {
    schema: z.string().trim().regex(/^postgres(ql)?:\/\//, "expected a postgres:// URL"),
    shown: "DATABASE_URL",
    about:
      "postgres://… of a streaming replica that lists, stats and console charts read from (they may lag it); never reads by id",
    secret: true,
  },
  DATABASE_SCHEMA: {
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "expected a lowercase SQL identifier"),
    shown: "the server's search_path",
    about: "schema to use (several Dispatch installations on one database)",
  },
  DISPATCH_DATA_DIR: {
    schema: z.string().min(1),
    fallback: ".dispatch-data",
    about: "where the embedded database keeps its files",
  },
  DISPATCH_ENV: {
    schema: z.enum(["development", "production"]),
    fallback: "development",
    about:
      "production requires API keys and DATABASE_URL, refuses private targets and short secrets",
  },
  ADDR: {
    schema: addr,
    shown: `${loopbackAddr}, :8080 in production`,
    about: "listen address, host:port or :port (:8080 listens on every interface)",
  },
  DISPATCH_API_KEYS: {
    schema: keyList,
    about:
      "comma-separated bearer tokens (printable ASCII, no spaces); unset leaves the API open (a warning is logged)",
    secret: true,
  },
  LOG_LEVEL: {
    schema: z.enum(["debug", "info", "warn", "error"]),
    fallback: "info",
    about: "debug, info, warn, error",
  },
  WORKER_CONCURRENCY: {
    schema: int(1, 10_000),
    fallback: "64",
    about: "deliveries in flight per process",
  },
  MAX_ATTEMPTS: {
    schema: int(1, 100),
    fallback: "8",
    about: "attempts per delivery, unless the subscription overrides it",
  },
  RETRY_BASE_DELAY_MS: { schema: int(1, 86_400_000), fallback: "1000", about: "backoff base" },
  RETRY_MAX_DELAY_MS: {
    schema: int(1, 604_800_000),
    fallback: "3600000",
    about: "backoff cap (also caps Retry-After)",
  },
  DELIVERY_TIMEOUT_MS: { schema: int(100, 600_000), fallback: "30000", about: "per attempt" },
  SHUTDOWN_TIMEOUT_MS: {
    schema: int(0, 600_000),
    fallback: "10000",
    about: "drain time for in-flight deliveries on shutdown",
  },
  STATEMENT_TIMEOUT_MS: {
    schema: int(0, 3_600_000),
    fallback: "30000",
    about:
      "the database cancels any statement that runs longer (statement_timeout; migrations are exempt); 0 never",
  },
  REQUEST_TIMEOUT_MS: {
    schema: int(100, 600_000),
    fallback: "5000",
    about:
      "an API request not answered by then (the database does not answer) answers 503 with Retry-After",
  },
  HEADER_TIMEOUT_MS: {
    schema: int(100, 600_000),
    fallback: "10000",
    about:
      "a connection is closed when its client takes longer to send a request's head (from connecting, or from the request's first byte)",
  },
  MAX_PAYLOAD_BYTES: {
    schema: int(1024, 64 * 1024 * 1024),
    fallback: String(256 * 1024),
    about: "largest request body; also the largest data of dispatch_publish()",
  },
  ALLOW_PRIVATE_TARGETS: {
    schema: bool,
    shown: "true outside production",
    about: "allow loopback, private and link-local delivery targets",
  },
  ALLOWED_TARGET_CIDRS: {
    schema: cidrList,
    about:
      "comma-separated CIDR ranges allowed as targets even when private targets are not, e.g. 10.20.0.0/16,fd00::/8",
  },
  DISPATCH_SECRETS_KEY: {
    schema: secretsKey,
    shown: "none: secrets stored as given",
    about: "base64 of 32 random bytes (openssl rand -base64 32): encrypts signing secrets at rest",
    secret: true,
  },
  DELIVERY_CA_FILE: {
    schema: z.string().trim().min(1),
    shown: "none: the system's CAs only",
    about:
      "PEM file of CA certificates trusted for deliveries besides the system's (endpoints with a private CA); read at start-up",
  },
  DELIVERY_PROXY_URL: {
    schema: proxyUrl,
    shown: "none: deliveries connect directly",
    about:
      "http://[user:password@]host:port of an egress proxy every delivery goes through (CONNECT to the checked address)",
    secret: true,
  },
  POLL_INTERVAL_MS: {
    schema: int(10, 60_000),
    fallback: "1000",
    about: "idle workers look for due retries this often (new events wake them at once)",
  },
  SECRET_ROTATION_GRACE_MS: {
    schema: int(0, 30 * 86_400_000),
    fallback: String(86_400_000),
    about: "how long a rotated-out secret still signs",
  },
  METRICS_PUBLIC: {
    schema: bool,
    shown: "true outside production",
    about: "false puts /metrics behind the API keys (its labels name every tenant's event types)",
  },
  RETENTION_DAYS: {
    schema: days,
    shown: "none: keep everything",
    about:
      "drop finished history (events, deliveries, attempts) older than this many days, a time partition at a time; a fraction, e.g. 0.01 (14.4 minutes), for tests and soaks",
  },
  AUDIT_RETENTION_DAYS: {
    schema: days,
    fallback: "90",
    about: "drop audit log entries older than this many days, a time partition at a time",
  },
  CIRCUIT_FAILURE_THRESHOLD: {
    schema: int(0, 10_000),
    fallback: "10",
    about:
      "consecutive failed attempts (timeouts, connection errors, 5xx, 429) that open a subscription's circuit; 0 turns the breaker off",
  },
  CIRCUIT_COOLDOWN_MS: {
    schema: int(100, 86_400_000),
    fallback: "30000",
    about:
      "how long an open circuit holds deliveries before one probe goes; doubles after each failed probe",
  },
  CIRCUIT_MAX_COOLDOWN_MS: {
    schema: int(100, 604_800_000),
    fallback: "3600000",
    about: "the longest cool-down",
  },
  AUTO_DISABLE_AFTER_MS: {
    schema: int(0, 31_536_000_000),
    fallback: "432000000",
    about:
      "a subscription whose attempts have all failed for this long is disabled (reason failing); 0 never",
  },
  ACTION_RATE_LIMIT: {
    schema: int(0, 1_000_000),
    fallback: "60",
    about:
      "test sends, recoveries and retries (POST …/test, …/recover, …/retry) per API key a minute, 429 beyond; 0 no limit",
  },
  EVENT_TYPES: {
    schema: z.enum(["open", "strict"]),
    fallback: "open",
    about:
      "open: an event whose type is not in the catalog (GET /event-types) is accepted unvalidated; strict: it is refused with 400",
  },
  CONSOLE_SESSION_SECRET: {
    schema: z.string().min(32, "expected at least 32 characters (openssl rand -base64 32)"),
    shown: "derived from DISPATCH_SECRETS_KEY, else random per process",
    about:
      "signs console sessions and portal links: give every process behind one load balancer the same one (or the same DISPATCH_SECRETS_KEY)",
    secret: true,
  },
  CONSOLE_FRAME_ANCESTORS: {
    schema: frameAncestors,
    shown: "none: the console cannot be framed",
    about:
      "origins that may show the console in a frame (CSP frame-ancestors), e.g. https://app.example.com",
  },
} as const satisfies Record<string, Variable>;

type Vars = typeof variables;
type Parsed = { [K in keyof Vars]: z.output<Vars[K]["schema"]> | undefined };

/**
 * Parses the environment. Throws a {@linkcode ConfigError} naming the first
 * bad variable and what it accepts.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const v = {} as Record<string, unknown>;
  for (const [name, variable] of Object.entries(variables) as [string, Variable][]) {
    const raw = env[name] === undefined || env[name] === "" ? variable.fallback : env[name];
    if (raw === undefined) continue;
    const result = variable.schema.safeParse(raw);
    if (!result.success) {
      const why = result.error.issues[0]?.message ?? "invalid value";
      const shown = variable.secret ? "" : ` "${raw}"`;
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
  if (production && p.DATABASE_URL === undefined) {
    throw new ConfigError(
      "Missing DATABASE_URL: it is required when DISPATCH_ENV=production (postgres://… of the PostgreSQL server); the embedded database is for trying Dispatch out",
    );
  }
  if (p.DATABASE_READ_URL !== undefined && p.DATABASE_URL === undefined) {
    throw new ConfigError(
      "Invalid DATABASE_READ_URL: it needs DATABASE_URL (the embedded database has no replica)",
    );
  }
  for (
    const [base, max] of [
      ["RETRY_BASE_DELAY_MS", "RETRY_MAX_DELAY_MS"],
      ["CIRCUIT_COOLDOWN_MS", "CIRCUIT_MAX_COOLDOWN_MS"],
    ] as const
  ) {
    if (p[base]! > p[max]!) {
      throw new ConfigError(
        `Invalid ${base} "${p[base]}": it must not exceed ${max} (${p[max]})`,
      );
    }
  }
  return sections(p);
}

/** The parsed variables by section, with the values derived from them. */
function sections(p: Parsed): Config {
  const production = p.DISPATCH_ENV === "production";
  const apiKeys = p.DISPATCH_API_KEYS ?? [];
  // Outside production an open API with private targets allowed must not face the network.
  const [hostname, port] = splitAddr(p.ADDR ?? (production ? ":8080" : loopbackAddr));
  const leaseMs = p.DELIVERY_TIMEOUT_MS! * 2 + 5000;
  return {
    env: p.DISPATCH_ENV!,
    http: {
      hostname,
      port,
      apiKeys,
      requestTimeoutMs: p.REQUEST_TIMEOUT_MS!,
      headerTimeoutMs: p.HEADER_TIMEOUT_MS!,
      maxPayloadBytes: p.MAX_PAYLOAD_BYTES!,
      metricsPublic: p.METRICS_PUBLIC ?? !production,
      shutdownTimeoutMs: p.SHUTDOWN_TIMEOUT_MS!,
      actionRateLimit: p.ACTION_RATE_LIMIT!,
      eventTypes: p.EVENT_TYPES!,
      consoleSessionKey: sessionKey(p.CONSOLE_SESSION_SECRET ?? p.DISPATCH_SECRETS_KEY),
      consoleFrameAncestors: p.CONSOLE_FRAME_ANCESTORS ?? [],
    },
    security: {
      allowPrivateTargets: p.ALLOW_PRIVATE_TARGETS ?? !production,
      allowedTargetCidrs: p.ALLOWED_TARGET_CIDRS ?? [],
      secretsKey: p.DISPATCH_SECRETS_KEY ?? null,
      rotationGraceMs: p.SECRET_ROTATION_GRACE_MS!,
    },
    delivery: {
      maxAttempts: p.MAX_ATTEMPTS!,
      retryBaseDelayMs: p.RETRY_BASE_DELAY_MS!,
      retryMaxDelayMs: p.RETRY_MAX_DELAY_MS!,
      deliveryTimeoutMs: p.DELIVERY_TIMEOUT_MS!,
      circuitFailureThreshold: p.CIRCUIT_FAILURE_THRESHOLD!,
      circuitCooldownMs: p.CIRCUIT_COOLDOWN_MS!,
      circuitMaxCooldownMs: p.CIRCUIT_MAX_COOLDOWN_MS!,
      autoDisableAfterMs: p.AUTO_DISABLE_AFTER_MS!,
      caFile: p.DELIVERY_CA_FILE ?? null,
      proxy: p.DELIVERY_PROXY_URL ?? null,
    },
    worker: {
      concurrency: p.WORKER_CONCURRENCY!,
      pollIntervalMs: p.POLL_INTERVAL_MS!,
      leaseMs,
      rescueIntervalMs: Math.max(1000, Math.min(leaseMs / 4, 30_000)),
      retentionDays: p.RETENTION_DAYS ?? null,
      auditRetentionDays: p.AUDIT_RETENTION_DAYS!,
    },
    database: {
      url: p.DATABASE_URL ?? null,
      readUrl: p.DATABASE_READ_URL ?? null,
      schema: p.DATABASE_SCHEMA ?? null,
      dataDir: p.DISPATCH_DATA_DIR!,
      statementTimeoutMs: p.STATEMENT_TIMEOUT_MS!,
      poolSize: Math.min(20, 4 + Math.ceil(p.WORKER_CONCURRENCY! / 16)),
    },
    observability: { logLevel: p.LOG_LEVEL! },
  };
}

/**
 * The console's signing key, from a secret every process shares (so any of
 * them honours a session another signed), never the secret itself: a key
 * that signs cookies must not be the one that seals subscription secrets.
 */
function sessionKey(secret: string | Uint8Array | undefined): Uint8Array<ArrayBuffer> | null {
  if (secret === undefined) return null;
  return new Uint8Array(createHmac("sha256", secret).update("dispatch console sessions").digest());
}

function splitAddr(addr: string): [string, number] {
  const i = addr.lastIndexOf(":");
  const host = addr.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(addr.slice(i + 1));
  if (port > 65535) throw new ConfigError(`Invalid ADDR "${addr}": port must be at most 65535`);
  return [host === "" ? "0.0.0.0" : host, port];
}
