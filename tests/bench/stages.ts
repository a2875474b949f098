/**
 * Where a delivery's time goes, for `deno task bench --tail`: each event's
 * send, its insert (the insert transaction's `now()`), the answer to its
 * POST, the start of its first attempt (`delivery_attempts.started_at`) and
 * its arrival, all on the machine's one wall clock. The slowest 1 % is put
 * beside the median delivery, stage by stage, so the tail shows where it
 * waits. The bare prototype records no attempt start: its insert-to-arrival
 * stage holds the claim and the send together.
 *
 * @module
 */
import type { Sql } from "../../src/db/pool.ts";
import { pct, round } from "./harness.ts";

/** A bench-side time on the wall clock, in epoch ms (PostgreSQL's `now()` is on it too). */
export function wallClock(now: number): number {
  return performance.timeOrigin + now;
}

/** One delivery's times, epoch ms; the database's fill in later. */
export interface Timeline {
  sent: number;
  answered?: number;
  inserted?: number;
  attempted?: number;
  arrived: number;
}

/** The insert and first-attempt times of the events whose id starts with `prefix`. */
export async function fillFromDatabase(
  sql: Sql,
  schema: string,
  prefix: string,
  bare: boolean,
  timelines: Map<string, Timeline>,
): Promise<void> {
  const t = (name: string) => sql(`${schema}.${name}`);
  const rows = bare
    ? await sql<{ id: string; inserted: number; attempted: number | null }[]>`
      SELECT id, extract(epoch FROM created_at) * 1000 AS inserted, NULL AS attempted
      FROM ${t("bare_events")} WHERE id LIKE ${prefix + "%"}`
    : await sql<{ id: string; inserted: number; attempted: number | null }[]>`
      SELECT e.id, extract(epoch FROM e.created_at) * 1000 AS inserted,
        extract(epoch FROM a.started_at) * 1000 AS attempted
      FROM ${t("events")} e
      LEFT JOIN ${t("delivery_attempts")} a ON a.event_id = e.id AND a.attempt = 1
      WHERE e.id LIKE ${prefix + "%"}`;
  for (const r of rows) {
    const line = timelines.get(r.id);
    if (!line) continue;
    line.inserted = Number(r.inserted);
    if (r.attempted !== null) line.attempted = Number(r.attempted);
  }
}

const stages = {
  /** The request's way in and its wait for an insert statement (the group commit's batch). */
  "send→insert": (l: Timeline) => sub(l.inserted, l.sent),
  /** Insert, commit, answer: what the producer waits for. */
  "insert→answer": (l: Timeline) => sub(l.answered, l.inserted),
  /** Commit, wake, claim, building the signed request. */
  "insert→attempt": (l: Timeline) => sub(l.attempted, l.inserted),
  /** The HTTP request to the receiver, and the receiver's turn to run. */
  "attempt→arrival": (l: Timeline) => sub(l.arrived, l.attempted),
  /** Everything after the insert (the bare prototype's only view of it). */
  "insert→arrival": (l: Timeline) => sub(l.arrived, l.inserted),
};

function sub(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a - b;
}

export type StageFigures = Record<string, { median: number; tail: number }>;

/**
 * Each stage's median over every delivery, and its mean over the slowest 1 %
 * (send to arrival): a stage whose tail figure far exceeds its median is
 * where the slow deliveries waited.
 */
export function breakdown(timelines: Iterable<Timeline>): StageFigures {
  const all = [...timelines].sort((a, b) => (a.arrived - a.sent) - (b.arrived - b.sent));
  const slowest = all.slice(Math.floor(all.length * 0.99));
  const figures: StageFigures = {};
  for (const [name, of] of Object.entries(stages)) {
    const values = all.flatMap((l) => of(l) ?? []).sort((a, b) => a - b);
    const tail = slowest.flatMap((l) => of(l) ?? []);
    if (values.length === 0 || tail.length === 0) continue;
    figures[name] = {
      median: round(pct(values, 0.5), 1),
      tail: round(tail.reduce((s, v) => s + v, 0) / tail.length, 1),
    };
  }
  return figures;
}

/**
 * How late this process's own timers run while it measures: the receiver's
 * arrival times are taken on the same event loop, so its lag is in every figure.
 */
export function startLagMeter(everyMs = 10): { stop(): { p99: number; max: number } } {
  const lags: number[] = [];
  let due = performance.now() + everyMs;
  let timer = setTimeout(function tick() {
    const now = performance.now();
    lags.push(now - due);
    due = now + everyMs;
    timer = setTimeout(tick, everyMs);
  }, everyMs);
  return {
    stop() {
      clearTimeout(timer);
      lags.sort((a, b) => a - b);
      return { p99: round(pct(lags, 0.99), 1), max: round(lags.at(-1) ?? NaN, 1) };
    },
  };
}
