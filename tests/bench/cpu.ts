/**
 * CPU time of a bench run, read from /proc (Linux only): user + system time
 * of the process under test, of the PostgreSQL server's processes and of the
 * bench itself, between `startCpuMeter()` and `stop()`.
 *
 * PostgreSQL's processes come and go (a pool opens a connection, an
 * autovacuum worker starts and ends), so they are sampled every
 * `sampleMs`: one that starts during the run counts from zero, one that
 * ends counts up to its last sample (what it spent after that is lost, and
 * the number of such processes is reported). Each process is sorted by its
 * title (`postgres: user database host(port) state`): backends of the run's
 * database, the server's background processes (WAL writer, checkpointer,
 * autovacuum…, shared with every database on the server), and backends of
 * other databases, which belong to whatever else runs on the machine.
 *
 * @module
 */

/** Clock ticks a second (`getconf CLK_TCK`), in which /proc counts CPU time. */
export const ticksPerSecond = await (async () => {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** A process's state, ppid, user + system ticks and start time (ticks since boot), or null if gone. */
export function stat(pid: number | "self"): { ppid: number; ticks: number; start: number } | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name is in parentheses and may hold spaces: fields count from after it.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), start: Number(f[19]) };
}

function read(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** Busy and total ticks of the whole machine, all cores (/proc/stat). */
function machine(): { busy: number; total: number } {
  const f = (read("/proc/stat") ?? "").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

type Kind = "ours" | "background" | "other" | "pending";

interface Tracked {
  pid: number;
  kind: Kind;
  /** Ticks when first seen: zero for a process that started during the run. */
  base: number;
  last: number;
  gone: boolean;
}

/**
 * What a postgres process works for, from its title. A freshly forked child
 * still shows the postmaster's command line: "pending" until it has a title.
 */
function kindOf(pid: number, database: string, known: Iterable<Tracked>): Kind {
  const cmdline = read(`/proc/${pid}/cmdline`)?.replaceAll("\0", " ").trim() ?? "";
  if (!cmdline.startsWith("postgres: ")) {
    const parent = stat(pid)?.ppid;
    return parent !== undefined && read(`/proc/${parent}/comm`)?.trim() === "postgres"
      ? "pending"
      : "background"; // the postmaster
  }
  let title = cmdline.slice("postgres: ".length);
  // `cluster_name` (e.g. "15/main: ") comes first when set.
  const cluster = /^(\S+): /.exec(title);
  if (cluster) title = title.slice(cluster[0].length);
  const words = title.split(" ");
  // A client backend: user database host(port) or [local].
  if (words.length >= 3 && /\(\d+\)$|^\[local\]$/.test(words[2]!)) {
    return words[1] === database ? "ours" : "other";
  }
  const leader = /^parallel worker for PID (\d+)/.exec(title);
  if (leader) {
    const k = [...known].find((t) => t.pid === Number(leader[1]) && !t.gone)?.kind;
    return k === "ours" || k === "other" ? k : "pending";
  }
  const vacuum = /^autovacuum worker (\S+)/.exec(title);
  if (vacuum) return vacuum[1] === database ? "ours" : "other";
  return "background";
}

export interface CpuFigures {
  /** CPU-ms of the process under test (of all of them, where there are several). */
  dispatch: number;
  /** CPU-ms of each kind of process under test, where there are several (`serve`, `api`…). */
  dispatch_by_kind?: Record<string, number>;
  /** CPU-ms of the run's database's backends plus the server's background processes. */
  postgres: number;
  postgres_backends: number;
  postgres_background: number;
  /** CPU-ms of backends of other databases on the same server: not this run's. */
  postgres_other_databases: number;
  /**
   * This run's PostgreSQL processes (backends of its database, background ones) that ended
   * during the run: what each spent after its last sample (`sampleMs`) is not counted.
   */
  postgres_processes_ended: number;
  /** CPU-ms of the bench process: load generator and receiver. */
  bench: number;
  /** Share of all cores busy during the run, whoever used them. */
  machine_busy_pct: number;
  seconds: number;
}

/**
 * Starts counting; `stop()` returns what each side spent since. Several
 * processes under test come as their pids by kind, and count each kind apart.
 */
export function startCpuMeter(
  under: number | Record<string, number[]>,
  database: string,
  sampleMs = 250,
): { stop(): CpuFigures } {
  const kinds = typeof under === "number" ? { dispatch: [under] } : under;
  const uptime = () => Number((read("/proc/uptime") ?? "0").split(" ")[0]);
  const startedAt = uptime() * ticksPerSecond;
  const t0 = performance.now();
  const ticksOf = (pids: number[]) => pids.reduce((a, p) => a + (stat(p)?.ticks ?? NaN), 0);
  const kinds0 = Object.fromEntries(Object.entries(kinds).map(([k, pids]) => [k, ticksOf(pids)]));
  const self0 = stat("self")?.ticks ?? NaN;
  const machine0 = machine();
  const procs = new Map<string, Tracked>();

  const sample = () => {
    const seen = new Set<string>();
    for (const entry of Deno.readDirSync("/proc")) {
      const p = Number(entry.name);
      if (!Number.isInteger(p)) continue;
      const s = stat(p);
      if (!s) continue;
      // Keyed by pid and start time: a reused pid is another process.
      const key = `${p}:${s.start}`;
      let t = procs.get(key);
      if (!t) {
        if (read(`/proc/${p}/comm`)?.trim() !== "postgres") continue;
        t = {
          pid: p,
          kind: "pending",
          base: s.start >= startedAt ? 0 : s.ticks,
          last: s.ticks,
          gone: false,
        };
        procs.set(key, t);
      }
      if (t.kind === "pending") t.kind = kindOf(p, database, procs.values());
      t.last = s.ticks;
      seen.add(key);
    }
    for (const [key, t] of procs) if (!seen.has(key)) t.gone = true;
  };
  sample();
  const timer = setInterval(sample, sampleMs);

  return {
    stop(): CpuFigures {
      clearInterval(timer);
      sample();
      const ms = (ticks: number) => Math.round((ticks * 1000) / ticksPerSecond);
      const sum = (kinds: Kind[]) =>
        ms(
          [...procs.values()].filter((t) => kinds.includes(t.kind))
            .reduce((a, t) => a + t.last - t.base, 0),
        );
      const m = machine();
      const byKind = Object.fromEntries(
        Object.entries(kinds).map(([k, pids]) => [k, ms(ticksOf(pids) - kinds0[k]!)]),
      );
      const backends = sum(["ours"]);
      // An unnamed child (never titled) is counted with the background processes.
      const background = sum(["background", "pending"]);
      return {
        dispatch: Object.values(byKind).reduce((a, b) => a + b, 0),
        ...(typeof under === "number" ? {} : { dispatch_by_kind: byKind }),
        postgres: backends + background,
        postgres_backends: backends,
        postgres_background: background,
        postgres_other_databases: sum(["other"]),
        postgres_processes_ended: [...procs.values()].filter((t) => t.gone && t.kind !== "other")
          .length,
        bench: ms((stat("self")?.ticks ?? NaN) - self0),
        machine_busy_pct: Math.round(((m.busy - machine0.busy) / (m.total - machine0.total)) * 100),
        seconds: Math.round(performance.now() - t0) / 1000,
      };
    },
  };
}

/** CPU-ms per delivery (or per event where nothing is delivered), to the hundredth. */
export function perDelivery(
  cpu: CpuFigures,
  count: number,
): { dispatch: number; postgres: number; by_kind?: Record<string, number> } {
  const per = (ms: number) => count > 0 ? Math.round((ms / count) * 100) / 100 : NaN;
  const byKind = cpu.dispatch_by_kind;
  return {
    dispatch: per(cpu.dispatch),
    postgres: per(cpu.postgres),
    ...(byKind
      ? { by_kind: Object.fromEntries(Object.entries(byKind).map(([k, ms]) => [k, per(ms)])) }
      : {}),
  };
}

/** The database a connection URL names (the user's name when it names none, as libpq does). */
export function databaseOf(url: string): string {
  const u = new URL(url);
  return decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username) || "postgres";
}
