/**
 * The entry point: parses the command line and runs it. `serve`, `api` and
 * `worker` call `src/service.ts`, the composition root; `migrate` only
 * migrates.
 *
 * @module
 */
import { ConfigError, loadConfig } from "./src/config.ts";
import { helpText, parseCommand, versionText } from "./src/cli.ts";
import { migrate } from "./src/db/migrate.ts";
import { openDatabase } from "./src/db/open.ts";
import { createLogger, type Logger } from "./src/observability/log.ts";
import { SHUTDOWN_GRACE_MS, startService } from "./src/service.ts";
import { onStopSignals } from "./src/stop_signals.ts";

async function main(args: string[]): Promise<number> {
  const command = parseCommand(args);
  if (command.kind === "help") {
    console.log(helpText(command.topic));
    return 0;
  }
  if (command.kind === "version") {
    console.log(versionText());
    return 0;
  }
  if (command.kind === "error") {
    console.error(command.message);
    return 2;
  }
  let config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: config.observability.logLevel });

  if (command.kind === "migrate") {
    try {
      const db = await openDatabase(config.database, log);
      try {
        const status = await migrate(db.sql);
        log.info("Migrations applied", { ...status, database_url: db.url });
      } finally {
        await db.close();
      }
      return 0;
    } catch (err) {
      return startupFailed(log, err);
    }
  }

  // Listening before start-up: a signal that comes while it runs stops the service once it is up.
  const signalled = Promise.withResolvers<void>();
  onStopSignals({
    stop() {
      // Whatever the database does, shutdown ends within the drain time and a fixed grace.
      setTimeout(() => {
        log.error("Shutdown did not finish in time: exiting now", {
          waited_ms: config.http.shutdownTimeoutMs + SHUTDOWN_GRACE_MS,
        });
        Deno.exit(1);
      }, config.http.shutdownTimeoutMs + SHUTDOWN_GRACE_MS);
      signalled.resolve();
    },
    again() {
      log.warn("Second signal: exiting now");
      Deno.exit(1);
    },
  });

  let service;
  try {
    service = await startService(config, { role: command.kind, log });
  } catch (err) {
    return startupFailed(log, err);
  }
  await signalled.promise;
  try {
    await service.stop();
  } catch (err) {
    log.error("Shutdown failed", { error: err });
    return 1;
  }
  return 0;
}

/** One log line that says what went wrong, instead of a stack trace. */
function startupFailed(log: Logger, err: unknown): number {
  if (err instanceof ConfigError) {
    log.error(err.message);
    return 2;
  }
  log.error("Start-up failed", { error: err });
  return 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
