import type { TestDatabase } from "./db.ts";
import { type Api, apiClient, overHttp } from "./http.ts";
import { serviceEnv } from "./service.ts";

const main = new URL("../../main.ts", import.meta.url).pathname;

export interface DispatchProcess {
  url: string;
  /** Calls its API that must succeed. */
  api: Api;
  child: Deno.ChildProcess;
  /** Every log line the process printed so far, parsed. */
  logs: Record<string, unknown>[];
  /** What the process wrote to stderr so far (also passed on to the test's stderr). */
  stderr: () => string;
  /** Resolves with the exit code once stdout and stderr are drained. */
  exited: Promise<number>;
}

const root = new URL("../..", import.meta.url).pathname;

/** Runs `main.ts <role>` as a real process in the test's schema and waits until it listens. */
export function spawnDispatch(
  db: TestDatabase,
  options: { env?: Record<string, string>; role?: string } = {},
): Promise<DispatchProcess> {
  return spawnLogged(["run", "--allow-all", main, options.role ?? "serve"], {
    ...serviceEnv(db, options.env),
    LOG_LEVEL: "info",
  });
}

/**
 * Runs `deno task start` in the project as a new user does, with no
 * configuration but a data directory and a free port: empty values count
 * as unset, so the suite's own database settings do not reach it.
 */
export function spawnTaskStart(
  dataDir: string,
  env: Record<string, string> = {},
): Promise<DispatchProcess> {
  return spawnLogged(["task", "start"], {
    DATABASE_URL: "",
    DATABASE_SCHEMA: "",
    DISPATCH_DATA_DIR: dataDir,
    ADDR: "127.0.0.1:0",
    ...env,
  });
}

/** Runs deno with `args` in the project and waits for the "Dispatch started" line. */
async function spawnLogged(args: string[], env: Record<string, string>): Promise<DispatchProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  const started = Promise.withResolvers<string>();
  const reading = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        const entry = JSON.parse(line);
        logs.push(entry);
        if (entry.msg === "Dispatch started") started.resolve(String(entry.url));
      }
    }
  })();
  const readingErrors = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      await Deno.stderr.write(new TextEncoder().encode(chunk));
    }
  })();
  const exited = Promise.all([child.status, reading, readingErrors]).then(([status]) => {
    started.reject(new Error(`Dispatch exited with ${status.code} before it started`));
    return status.code;
  });
  const url = await started.promise;
  return { url, api: apiClient(overHttp(url)), child, logs, stderr: () => stderr, exited };
}

/** Runs `main.ts` to its end with only `env` set, as a process of its own. */
export async function runMain(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", main, ...args],
    env,
    stdin: "null",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
