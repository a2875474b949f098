/**
 * What the benchmarks share: a real Dispatch process started as a child on
 * 127.0.0.1, waited for and stopped, its RSS, and small figures helpers.
 * Moved here from bench.ts (which runs at import) so bench:soak can use them.
 *
 * @module
 */

/** DATABASE_URL, or an exit: a benchmark needs a real PostgreSQL server, not the embedded one. */
export function databaseUrl(who: string): string {
  const url = Deno.env.get("DATABASE_URL");
  if (url) return url;
  console.error(`DATABASE_URL is unset: ${who} needs a real PostgreSQL server`);
  Deno.exit(2);
}

export interface DispatchProcess {
  /** postgres://… of the server. */
  url: string;
  /** The schema Dispatch migrates and uses; it must exist. */
  schema: string;
  /** Its port on 127.0.0.1 (see {@linkcode freePort}). */
  port: number;
  /** `worker` serves /readyz on the port too. */
  role: "serve" | "api" | "worker";
  /** Dispatch's environment beside these (WORKER_CONCURRENCY, RETENTION_DAYS…). */
  env?: Record<string, string>;
}

/** The V8 flags of `deno task start` (a 4 MB young generation keeps RSS low). */
export function denoFlags(): string[] {
  return (Deno.env.get("BENCH_DENO_FLAGS") ?? "--v8-flags=--max-semi-space-size=4").split(" ")
    .filter(Boolean);
}

export function startDispatch(options: DispatchProcess): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ...denoFlags(),
      new URL("../../main.ts", import.meta.url).pathname,
      options.role,
    ],
    env: {
      DATABASE_URL: options.url,
      DATABASE_SCHEMA: options.schema,
      ADDR: `127.0.0.1:${options.port}`,
      // At info every attempt is a log line; LOG_LEVEL=info measures that cost too.
      LOG_LEVEL: Deno.env.get("LOG_LEVEL") ?? "warn",
      ...options.env,
    },
    stdin: "null",
    stdout: "null",
  }).spawn();
}

/** SIGTERM, then its exit; a child that has already gone (a Ctrl+C reached it too) is fine. */
export async function stop(child: Deno.ChildProcess) {
  try {
    child.kill("SIGTERM");
  } catch { /* already exited */ }
  await child.status;
}

/** Until Dispatch at `base` answers /readyz, for 30 s at the most. */
export async function waitForHealth(base: string) {
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`${base}/readyz`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not up yet */ }
    await sleep(100);
  }
  throw new Error("Dispatch did not become ready in 30 s");
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

/** The child's resident memory now (VmRSS) or at its peak (VmHWM), in MB. */
export function rssMb(child: Deno.ChildProcess, field: "VmRSS" | "VmHWM"): number {
  const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return round(kb / 1024, 1);
}

export function pct(sorted: number[], p: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
