/**
 * An embedded PostgreSQL for running Dispatch without a server: PGlite, served
 * by pglite-socket on a unix socket in a directory only this user can open,
 * behind a loopback TCP port that asks for a password made afresh at each
 * start (see `password_gate.ts`), so the rest of Dispatch talks to it through
 * postgres.js exactly as it would to a real server, and no other process can.
 *
 * PGlite is a single backend session that all connections share: transactions
 * from different connections run one after another, and session state (SET,
 * advisory locks, LISTEN) is common to every connection.
 *
 * pglite-socket runs one message at a time and keeps to one connection only
 * inside a transaction, so two connections' Parse/Bind/Execute/Sync batches
 * interleave and take each other's unnamed statement ("portal does not exist",
 * electric-sql/pglite#1046). {@linkcode keepBatchesWhole} closes that gap.
 *
 * @module
 */
import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { randomHex } from "../ids.ts";
import { startPasswordGate } from "./password_gate.ts";

/** A running embedded database. */
export interface EmbeddedDatabase {
  /** A postgres:// URL with this start's password, e.g. `postgres://postgres:…@127.0.0.1:54321/postgres`. */
  url: string;
  /** Closes the server and the database; later calls wait for the first. */
  stop(): Promise<void>;
}

/** Options for {@linkcode startEmbedded}. */
export interface StartEmbeddedOptions {
  /** Directory holding the database files; created when missing, reused when present. */
  dataDir: string;
  /** Loopback TCP port to listen on; 0, the default, lets the OS pick a free one. */
  port?: number;
}

const HOST = "127.0.0.1";

// pglite-socket accepts one connection by default and answers any extra one
// with plain text, on which postgres.js hangs; Dispatch holds a pool plus a
// LISTEN connection, so allow PostgreSQL's default max_connections.
const MAX_CONNECTIONS = 100;

/** Starts PGlite persisted at `dataDir` and serves it on a loopback port. */
export async function startEmbedded(options: StartEmbeddedOptions): Promise<EmbeddedDatabase> {
  // PGlite creates only the last path segment itself.
  await mkdir(options.dataDir, { recursive: true });
  // Two processes writing one PGlite directory corrupt it, and PGlite does not stop them.
  const lock = await Deno.open(`${options.dataDir}/dispatch.lock`, { create: true, write: true });
  if (!(await lock.tryLock(true))) {
    lock.close();
    throw new Error(
      `Another process is using the embedded database in "${options.dataDir}": stop it, or set DISPATCH_DATA_DIR to another folder`,
    );
  }
  let db: PGlite;
  try {
    db = await PGlite.create({ dataDir: options.dataDir });
  } catch (error) {
    lock.close();
    throw error;
  }
  // Made with mode 0700: only this user (and root) can reach the socket inside.
  const socketDir = await Deno.makeTempDir({ prefix: "dispatch-db-" });
  const server = new PGLiteSocketServer({
    db: keepBatchesWhole(db),
    path: `${socketDir}/.s.PGSQL.5432`,
    maxConnections: MAX_CONNECTIONS,
  });
  // Anyone who has it can do anything with the database.
  const password = randomHex(32);
  const port = options.port ?? 0;
  let gate;
  try {
    await server.start();
    gate = await startPasswordGate({
      hostname: HOST,
      port,
      password,
      socketPath: server.getServerConn(),
    });
  } catch (error) {
    await server.stop();
    await db.close();
    await Deno.remove(socketDir, { recursive: true });
    lock.close();
    throw new Error(`Cannot serve the embedded database on "${HOST}:${port}"`, { cause: error });
  }

  let stopped: Promise<void> | undefined;
  const { close } = gate;
  return {
    url: `postgres://postgres:${password}@${HOST}:${gate.port}/postgres`,
    stop() {
      stopped ??= close()
        .then(() => server.stop())
        .then(() => db.close())
        .then(() => Deno.remove(socketDir, { recursive: true }))
        .finally(() => lock.close());
      return stopped;
    },
  };
}

// Frontend messages that open or extend an extended-protocol batch, and those that end one.
const BATCH = new Set(["P", "B", "D", "E", "C", "H"].map((c) => c.charCodeAt(0)));
const BATCH_END = new Set(["S", "Q"].map((c) => c.charCodeAt(0)));

/**
 * `db` as pglite-socket's queue sees it: "in a transaction" also from a batch's
 * first message to its Sync, so the queue serves that connection alone until then.
 */
function keepBatchesWhole(db: PGlite): PGlite {
  let open = false;
  const overrides: Partial<PGlite> = {
    isInTransaction: () => open || db.isInTransaction(),
    execProtocolRawStream: async (message, options) => {
      const result = await db.execProtocolRawStream(message, options);
      if (BATCH.has(message[0]!)) open = true;
      else if (BATCH_END.has(message[0]!)) open = false;
      return result;
    },
  };
  return new Proxy(db, {
    get(target, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key as keyof PGlite];
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
