/**
 * The engine: the only code that changes events, deliveries and
 * subscriptions' delivery state, and the only code that wakes workers.
 * Each method runs one statement family of this folder and, when the
 * change made deliveries due, wakes the workers (see `wake.ts`): routes
 * and workers never hold the `sql` handle nor send a NOTIFY themselves.
 *
 * @module
 */
import {
  addHistoryPartitions,
  dropExpiredHistory,
  type HistoryFamily,
} from "../db/history_partitions.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../observability/log.ts";
import type { TenantFilter } from "../views/tenant_filter.ts";
import { deleteApiKey, insertApiKey, readKeyTable } from "./api_keys.ts";
import { audited, type PendingAudit, pendingAudit, settleAudit } from "./audit.ts";
import { claimDeliveries, type ClaimOptions } from "./claim.ts";
import { completeDeliveries } from "./complete.ts";
import { createEventWriter } from "./event_writer.ts";
import { deleteEventType, insertEventType, updateEventType } from "./event_types.ts";
import type { SubmitOptions } from "./group_commit.ts";
import {
  applyHealthChanges,
  type HealthChange,
  type HealthReport,
  type HealthSettings,
  lockSubscriptions,
  recordHealth,
} from "./health.ts";
import { handBack, renewLeases, rescueExpired } from "./lease.ts";
import {
  type BatchOutcome,
  type EventInput,
  setSqlPublishRules,
  type SqlPublishRules,
  type Target,
} from "./publish.ts";
import { countFailed, type FailedFilter, requeueFailed, requeueMany } from "./requeue.ts";
import {
  deleteSubscription,
  deleteTenant,
  insertSubscription,
  rotateSecret,
  type SubscriptionChanges,
  updateSubscription,
} from "./subscriptions.ts";
import type { Completion } from "./shapes.ts";
import { createWaker } from "./wake.ts";

export interface EngineOptions {
  sql: Sql;
  /** NOTIFY channel of this database schema's workers. */
  channel: string;
  log: Logger;
  /** Publications (requests) waiting to be written at most; beyond it `publish` refuses. */
  maxPendingPublications?: number;
}

/** What a batch of results says about subscriptions' health. */
export interface HealthWrite {
  reports: readonly HealthReport[];
  settings: HealthSettings;
  /**
   * The batch surely changes health. Otherwise (successes claimed while their
   * subscriptions had nothing to reset) it is one statement, unless the rows
   * say by then that one of its successes' subscriptions has health to reset.
   */
  surely: boolean;
}

export type Engine = ReturnType<typeof createEngine>;

export function createEngine(options: EngineOptions) {
  const { sql } = options;
  const waker = createWaker(options);
  const writer = createEventWriter(sql, { maxPending: options.maxPendingPublications });
  /** Passes `value` on, waking the workers first when `due` says work became due. */
  const waking = <T>(value: T, due: boolean): T => {
    if (due) waker.wake();
    return value;
  };
  const fanned = (outcomes: readonly BatchOutcome[]) =>
    outcomes.some((o) => o.kind === "created" && o.fanned > 0);

  return {
    onWake: waker.onWake,
    /** What this engine's NOTIFYs carry: a listener in the same process ignores them. */
    wakeOrigin: waker.origin,

    /**
     * **publish**: stores one request's events (in one statement, with
     * other requests' through the group-commit writer, which refuses when
     * too many wait) and fans them out, or to `to` alone; `signal` and
     * `deadline` withdraw or bound it (see `SubmitOptions`).
     */
    async publish(
      events: readonly EventInput[],
      options: { to?: Target } & SubmitOptions = {},
    ): Promise<BatchOutcome[]> {
      const { to, ...submit } = options;
      const outcomes = await writer.submit({ events, to, audit: pendingAudit() }, submit);
      return waking(outcomes, fanned(outcomes));
    },

    /** The largest `data` that `dispatch_publish()` takes, in bytes: the API's body limit. */
    setSqlPublishRules: (rules: SqlPublishRules) => setSqlPublishRules(sql, rules),

    claim: (claim: ClaimOptions) => claimDeliveries(sql, claim),

    /**
     * **deliver**, **retry**, **fail**, **abandon**: writes a batch of
     * outcomes, in one transaction with what they say about their
     * subscriptions (circuit, disable) and the announcements of it, which
     * first locks the batch's subscriptions in `seq` order; a batch that
     * changes no health is one statement (see {@linkcode HealthWrite}).
     */
    async complete(
      workerId: string,
      batch: readonly Completion[],
      health: HealthWrite,
    ): Promise<{ applied: boolean[]; changes: HealthChange[] }> {
      if (!health.surely) {
        const unlessUnsettled = health.reports.filter((r) => r.success).map((r) => r.seq);
        const done = await completeDeliveries(sql, workerId, batch, { unlessUnsettled });
        if (done !== null) return waking({ applied: done.applied, changes: [] }, done.released > 0);
      }
      const { applied, changes, woke } = await sql.begin(async (tx) => {
        const sql = tx as unknown as Sql;
        await lockSubscriptions(sql, batch.map((c) => c.subscriptionSeq));
        const { applied, released } = (await completeDeliveries(sql, workerId, batch))!;
        const changes = await recordHealth(sql, health.reports, health.settings);
        const { woke } = await applyHealthChanges(sql, changes);
        return { applied, changes, woke: woke || released > 0 };
      });
      return waking({ applied, changes }, woke);
    },

    handBack: (workerId: string, which: Parameters<typeof handBack>[2]) =>
      handBack(sql, workerId, which).then((n) => waking(n, n > 0)),
    renewLeases: (renewal: Parameters<typeof renewLeases>[1]) => renewLeases(sql, renewal),
    rescue: (rescue: Parameters<typeof rescueExpired>[1]) =>
      rescueExpired(sql, rescue).then((n) => waking(n, n > 0)),

    /** **requeue** one event's or one delivery's failed deliveries. */
    requeue: (scope: Parameters<typeof requeueFailed>[1]) =>
      audited(sql, (sql) => requeueFailed(sql, scope), (r) => r.requeued.length > 0 ? {} : null)
        .then((r) => waking(r, r.requeued.length > 0)),
    /** **requeue** a subscription's failed deliveries of a window. */
    recover: (scope: { subscriptionSeq: number; since: Date; until: Date | null }) =>
      audited(sql, (sql) => requeueMany(sql, scope), (n) => n > 0 ? {} : null)
        .then((n) => waking(n, n > 0)),
    /**
     * **requeue** every failed delivery of `filter`, in one statement however
     * many; with `dryRun`, only counts them. Answers how many.
     */
    retryFailed: (filter: FailedFilter & { dryRun?: boolean }) => {
      const { dryRun, ...failed } = filter;
      if (dryRun) return countFailed(sql, failed);
      const tenant = { tenantId: failed.tenantId ?? null };
      return audited(sql, (sql) => requeueMany(sql, { failed }), (n) => n > 0 ? tenant : null)
        .then((n) => waking(n, n > 0));
    },

    createSubscription: (sub: Parameters<typeof insertSubscription>[1]) =>
      audited(
        sql,
        (sql) => insertSubscription(sql, sub),
        (row) => row ? { id: row.id, tenantId: row.tenant_id } : null,
      ),
    /** Changes a subscription; what its limits or circuit held goes at once. */
    async updateSubscription(id: string, patch: SubscriptionChanges, filter?: TenantFilter) {
      const updated = await audited(
        sql,
        (sql) => updateSubscription(sql, id, patch, filter),
        (u) => u ? { tenantId: u.row.tenant_id } : null,
      );
      return waking(updated?.row, updated?.woke ?? false);
    },
    deleteSubscription: (id: string, filter?: TenantFilter) =>
      audited(
        sql,
        (sql) => deleteSubscription(sql, id, filter),
        (ok) => ok ? { tenantId: filter?.tenantId ?? null } : null,
      ),
    rotateSecret: (id: string, rotation: Parameters<typeof rotateSecret>[2]) =>
      audited(
        sql,
        (sql) => rotateSecret(sql, id, rotation),
        (r) => r ? { tenantId: rotation.tenantId ?? null } : null,
      ),
    deleteTenant: (id: string) =>
      audited(sql, (sql) => deleteTenant(sql, id), (ok) => ok ? {} : null),

    createApiKey: (key: Parameters<typeof insertApiKey>[1]) =>
      audited(
        sql,
        (sql) => insertApiKey(sql, key),
        (row) => ({ id: row.id, tenantId: row.tenant_id }),
      ),
    revokeApiKey: (id: string) =>
      audited(sql, (sql) => deleteApiKey(sql, id), (ok) => ok ? {} : null),
    /**
     * **audit**, once a request is answered: the entry of one that changed
     * nothing is written now; one written with its change gets the answer's status.
     */
    settleAudit: (entry: PendingAudit, status: number) => settleAudit(sql, entry, status),
    readKeyTable: (used: Parameters<typeof readKeyTable>[1]) => readKeyTable(sql, used),

    createEventType: (type: Parameters<typeof insertEventType>[1]) =>
      audited(sql, (sql) => insertEventType(sql, type), (row) => row ? { id: row.name } : null),
    /** Changes a type unless `check`, given the type as it is, throws. */
    updateEventType: (
      name: string,
      changes: Parameters<typeof updateEventType>[2],
      check: Parameters<typeof updateEventType>[3],
    ) =>
      audited(
        sql,
        (sql) => updateEventType(sql, name, changes, check),
        (row) => row ? {} : null,
      ),
    deleteEventType: (name: string) =>
      audited(sql, (sql) => deleteEventType(sql, name), (ok) => ok ? {} : null),

    /** A family's partitions until a width from now (see src/db/history_partitions.ts). */
    addHistoryPartitions: (family: HistoryFamily, widthMs: number) =>
      addHistoryPartitions(sql, family, widthMs),
    dropExpiredHistory: (family: HistoryFamily, olderThanMs: number) =>
      dropExpiredHistory(sql, family, olderThanMs),

    /** Stops taking publications and waits for the NOTIFY in flight. */
    async close(): Promise<void> {
      writer.close();
      await writer.drain();
      await waker.settled();
    },
  };
}
