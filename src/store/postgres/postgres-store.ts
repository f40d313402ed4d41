import pg from "pg";
import type { Batch, BatchStatus, BatchUsage, ItemOutcome, ItemState, RequestCounts, RequestItem } from "../../core/batch.js";
import { invalidRequest } from "../../core/errors.js";
import { itemIds, lineInItemId } from "../item-ids.js";
import type { ParsedRequestLine } from "../../core/request-line.js";
import type { BatchListQuery, FileRecord, FinishedItem, OutcomeRecord, Page, Store } from "../store.js";
import * as batches from "./batch-rows.js";
import { PgDatabase, type Queryable } from "./db.js";
import * as files from "./file-rows.js";
import * as queue from "./item-queue.js";
import { settleLines } from "./item-queue.js";
import { PgWebhookOutbox } from "./webhook-outbox.js";
import { PgVendorJobs } from "./vendor-jobs.js";
import { PgBudgets } from "./budgets.js";
import { notifyWork, WORK_CHANNEL } from "./work-channel.js";

/** Re-exported so callers keep importing them from the store. */
export { WORK_CHANNEL } from "./work-channel.js";
export { settleLines } from "./item-queue.js";

/** Rows of one multi-row INSERT of items (PostgreSQL allows 65535 parameters; 5 per row). */
const INSERT_ROWS = 2000;
/** Items stored by this process after which it refreshes the planner's statistics of request_items (see insertItems). */
const ANALYZE_AFTER_ROWS = 20_000;

/** Settings of the shared store. Times in ms. */
export interface PostgresStoreOptions {
  /** How often this process writes its workers' heartbeat and returns dead workers' leases (default 1000). */
  heartbeatMs?: number;
  /** A worker not seen for this long is dead: its leases go back to the queue at once (default 5000). */
  deadAfterMs?: number;
  /** Most pooled connections (default 10). */
  maxConnections?: number;
}

/**
 * The shared store: every table in one PostgreSQL database that any number of API servers and workers use at once.
 * What makes that safe, as SQL:
 * - claims take queued items with `FOR UPDATE SKIP LOCKED` in batches, so concurrent workers never take the same item
 *   and never wait on each other; a claim is a lease with an expiry;
 * - an outcome is written only while its writer still holds the lease (`lease_owner` matches and the item is in flight),
 *   in one statement that also adds it to the batch's counters: a repeat after a lost lease writes nothing;
 * - a batch's status changes by compare-and-set (`WHERE status IN …`), and one process finalizes a batch at a time
 *   (`lockBatch`, a session advisory lock held on a dedicated connection, dropped by PostgreSQL if the process dies);
 * - dispatching processes register with a heartbeat (`registerWorker`); a worker whose heartbeat stops has its leases
 *   returned by any live process within about `deadAfterMs + heartbeatMs`, and its items run again elsewhere;
 * - new work is announced with NOTIFY on `openbatch_work`, which `onWork` listeners hear (LISTEN), so idle dispatchers
 *   wake at once rather than at their next poll.
 */
export class PostgresStore implements Store {
  readonly shared = true;
  readonly webhookOutbox: PgWebhookOutbox;
  readonly vendorJobs: PgVendorJobs;
  readonly budgets: PgBudgets;
  private readonly heartbeatMs: number;
  private readonly deadAfterMs: number;
  /** Lease owner ids this process dispatches as → the providers each has. */
  private readonly workers = new Map<string, string[]>();
  private heartbeat: NodeJS.Timeout | null = null;
  private listener: pg.Client | null = null;
  private readonly workListeners = new Set<() => void>();
  private lockClient: pg.Client | null = null;
  private closed = false;
  /** Where each batch's last claim ended (item-queue.ts). */
  private readonly claimCursors: queue.ClaimCursors = new Map();
  /** Items this process stored since it last ran ANALYZE on request_items. */
  private insertedSinceAnalyze = 0;

  private constructor(
    readonly db: PgDatabase,
    options: PostgresStoreOptions,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.deadAfterMs = options.deadAfterMs ?? 5000;
    this.webhookOutbox = new PgWebhookOutbox(db);
    this.vendorJobs = new PgVendorJobs(db);
    this.budgets = new PgBudgets(db);
  }

  /**
   * Connects, creates or migrates the schema, and starts the heartbeat.
   * @throws Error (from node-postgres) when the database cannot be reached.
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const db = new PgDatabase(url, options.maxConnections);
    try {
      await db.migrate();
    } catch (err) {
      await db.close();
      throw err;
    }
    const store = new PostgresStore(db, options);
    store.heartbeat = setInterval(() => void store.beat().catch(() => undefined), store.heartbeatMs);
    store.heartbeat.unref();
    return store;
  }

  /**
   * Registers a dispatching process's lease owner id and the providers it has: its heartbeat starts now, shared budgets
   * count it among the workers of those providers, and if it stops beating its leases go back to the queue.
   */
  async registerWorker(workerId: string, providers: string[]): Promise<void> {
    this.workers.set(workerId, providers);
    const now = Date.now();
    await this.upsertWorker(workerId, providers, now);
    await this.budgets.refresh(now, this.deadAfterMs);
  }

  private async upsertWorker(workerId: string, providers: string[], now: number): Promise<void> {
    await this.db.rows(
      `INSERT INTO workers (id, providers, started_at, last_seen) VALUES ($1, $2, $3, $3)
       ON CONFLICT (id) DO UPDATE SET providers = excluded.providers, last_seen = excluded.last_seen`,
      [workerId, providers, now],
    );
  }

  /** One heartbeat: our workers are alive; dead workers' leases go back to the queue; budget shares are refreshed. */
  private async beat(): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    // An upsert, not an update: a worker that stalled past deadAfterMs (its row deleted, its leases returned by
    // another process) registers again, so budget shares count it and its later leases still return if it dies.
    for (const [id, providers] of this.workers) await this.upsertWorker(id, providers, now);
    await this.returnDeadLeases(now);
    await this.budgets.refresh(now, this.deadAfterMs);
  }

  /**
   * Returns to the queue every item leased by a worker whose heartbeat stopped, and forgets those workers.
   * @returns items returned.
   */
  async returnDeadLeases(now = Date.now()): Promise<number> {
    return queue.returnDeadLeases(this.db, now, this.deadAfterMs, [...this.workers.keys()]);
  }


  /**
   * Calls `listener` whenever any process announces work (items added, a status changed, leases returned). The LISTEN
   * connection is opened on first use and reopened after an error. @returns a function that removes the listener.
   */
  onWork(listener: () => void): () => void {
    this.workListeners.add(listener);
    if (!this.listener) void this.listen();
    return () => this.workListeners.delete(listener);
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.db.url });
    this.listener = client;
    client.on("notification", () => {
      for (const l of this.workListeners) l();
    });
    client.on("error", () => {
      // Reconnect after a second; meanwhile dispatchers still poll.
      if (this.listener === client) this.listener = null;
      client.end().catch(() => undefined);
      if (!this.closed && this.workListeners.size > 0) setTimeout(() => void this.listen(), 1000).unref();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${WORK_CHANNEL}`);
    } catch {
      client.emit("error", new Error("listen failed"));
    }
  }

  private async notify(q: Queryable, batchId: string): Promise<void> {
    await notifyWork(q, batchId);
  }

  /**
   * One finalizer per batch across every process: takes a session advisory lock on the batch (on a connection kept
   * for locks), so it is dropped with the connection if this process dies.
   * @returns a release function when this process holds the lock now, null when another does.
   */
  async lockBatch(batchId: string): Promise<(() => Promise<void>) | null> {
    if (!this.lockClient) {
      const client = new pg.Client({ connectionString: this.db.url });
      client.on("error", () => {
        if (this.lockClient === client) this.lockClient = null;
      });
      await client.connect();
      this.lockClient = client;
    }
    const client = this.lockClient;
    const key = `openbatch.batch:${batchId}`;
    const got = (await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [key])).rows[0]!.ok;
    if (!got) return null;
    return async () => {
      await client.query(`SELECT pg_advisory_unlock(hashtext($1))`, [key]).catch(() => undefined);
    };
  }

  async insertFile(f: FileRecord): Promise<void> {
    return files.insertFile(this.db, f);
  }

  async getFile(id: string): Promise<FileRecord | null> {
    return files.getFile(this.db, id);
  }

  async listFiles(q: { owner: string | null; purpose?: string; order: "asc" | "desc"; after?: string; limit: number; liveAt?: number }): Promise<Page<FileRecord>> {
    return files.listFiles(this.db, q);
  }

  async deleteFile(id: string): Promise<boolean> {
    return files.deleteFile(this.db, id);
  }

  async expiredFiles(now: number, limit: number): Promise<FileRecord[]> {
    return files.expiredFiles(this.db, now, limit);
  }

  async insertBatch(b: Batch, providerKey: string | null): Promise<void> {
    return batches.insertBatch(this.db, b, providerKey);
  }

  async getBatch(id: string): Promise<Batch | null> {
    return batches.getBatch(this.db, id);
  }

  async listBatches(q: BatchListQuery & { owner: string | null }): Promise<Page<Batch>> {
    return batches.listBatches(this.db, q);
  }

  async batchesInStatus(statuses: readonly BatchStatus[]): Promise<Batch[]> {
    return batches.batchesInStatus(this.db, statuses);
  }

  async updateBatch(id: string, from: readonly BatchStatus[], patch: Partial<Batch>): Promise<boolean> {
    return batches.updateBatch(this.db, this.webhookOutbox, id, from, patch);
  }

  async getProviderKey(batchId: string): Promise<string | null> {
    return batches.getProviderKey(this.db, batchId);
  }

  async clearProviderKey(batchId: string): Promise<void> {
    return batches.clearProviderKey(this.db, batchId);
  }

  async hadProviderKey(batchId: string): Promise<boolean> {
    return batches.hadProviderKey(this.db, batchId);
  }

  async insertItems(batchId: string, lines: ParsedRequestLine[]): Promise<void> {
    try {
      await this.db.tx(async (c) => {
        for (let i = 0; i < lines.length; i += INSERT_ROWS) {
          const slice = lines.slice(i, i + INSERT_ROWS);
          await c.query(
            `INSERT INTO request_items (batch_id, line, id, custom_id, body)
             SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[])`,
            [batchId, slice.map((l) => l.line), itemIds(slice.map((l) => l.line)), slice.map((l) => l.custom_id), slice.map((l) => l.body)],
          );
        }
        await c.query(`UPDATE batch_counts SET total = total + $1 WHERE batch_id = $2`, [lines.length, batchId]);
        await this.notify(c, batchId);
      });
      this.insertedSinceAnalyze += lines.length;
      if (this.insertedSinceAnalyze >= ANALYZE_AFTER_ROWS) {
        this.insertedSinceAnalyze = 0;
        // Autovacuum's ANALYZE comes minutes later; until then the planner knew nothing of the new batch (209 rows
        // guessed for 30,000) and read each results page by a bitmap scan and sort of every later line: 40 ms a page
        // at 50,000 items, quadratic over the batch. Fresh statistics make it an index walk (~1 ms a page).
        void this.db.rows(`ANALYZE request_items (batch_id, line, state, next_attempt_at)`).catch(() => undefined);
      }
    } catch (err) {
      if ((err as { code?: string }).code === "23505") {
        // The database's message names tables and columns: say it in the caller's terms instead.
        throw invalidRequest("A custom_id in this call is already in the batch: every request needs its own.", "custom_id", "duplicate_custom_id");
      }
      throw err;
    }
  }

  async deleteItems(batchId: string): Promise<void> {
    await this.db.tx(async (c) => {
      await c.query(`DELETE FROM request_items WHERE batch_id = $1`, [batchId]);
      await c.query(`DELETE FROM batch_counts WHERE batch_id = $1`, [batchId]);
      await c.query(`INSERT INTO batch_counts (batch_id) VALUES ($1)`, [batchId]);
    });
  }

  async claimItems(batchId: string, leaseOwner: string, limit: number, now: number, leaseUntil: number): Promise<RequestItem[]> {
    return queue.claimItems(this.db, this.claimCursors, batchId, leaseOwner, limit, now, leaseUntil);
  }

  async requeueItem(batchId: string, line: number, leaseOwner: string, nextAttemptAt: number): Promise<boolean> {
    return queue.requeueItem(this.db, batchId, line, leaseOwner, nextAttemptAt);
  }

  async recordOutcomes(records: OutcomeRecord[], now: number): Promise<number> {
    return queue.recordOutcomes(this.db, records, now);
  }

  async settleUnfinished(batchId: string, outcome: ItemOutcome, now: number): Promise<number> {
    this.claimCursors.delete(batchId); // nothing of it is claimed again
    return settleLines(this.db.pool, batchId, 0, 2 ** 31 - 1, outcome, now);
  }

  async releaseLeases(batchId: string, now: number): Promise<number> {
    return queue.releaseLeases(this.db, batchId, now);
  }

  async countItems(batchId: string): Promise<{ counts: RequestCounts; usage: BatchUsage }> {
    const [r] = await this.db.rows<Record<string, number>>(`SELECT * FROM batch_counts WHERE batch_id = $1`, [batchId]);
    const c = r ?? { total: 0, succeeded: 0, failed: 0, expired: 0, cancelled: 0, input_tokens: 0, cached_tokens: 0, output_tokens: 0, reasoning_tokens: 0 };
    const finished = c.succeeded! + c.failed! + c.expired! + c.cancelled!;
    return {
      counts: { total: c.total!, completed: c.succeeded!, failed: c.failed!, expired: c.expired!, cancelled: c.cancelled!, pending: c.total! - finished },
      usage: { input_tokens: c.input_tokens!, cached_tokens: c.cached_tokens!, output_tokens: c.output_tokens!, reasoning_tokens: c.reasoning_tokens! },
    };
  }

  async itemTotals(): Promise<RequestCounts> {
    const [r] = await this.db.rows<Record<string, number>>(
      `SELECT coalesce(sum(total), 0)::bigint AS total, coalesce(sum(succeeded), 0)::bigint AS succeeded, coalesce(sum(failed), 0)::bigint AS failed,
              coalesce(sum(expired), 0)::bigint AS expired, coalesce(sum(cancelled), 0)::bigint AS cancelled FROM batch_counts`,
    );
    const finished = r!.succeeded! + r!.failed! + r!.expired! + r!.cancelled!;
    return { total: r!.total!, completed: r!.succeeded!, failed: r!.failed!, expired: r!.expired!, cancelled: r!.cancelled!, pending: r!.total! - finished };
  }

  async pageItems(batchId: string, afterLine: number, limit: number, states?: readonly ItemState[], maxBytes?: number): Promise<FinishedItem[]> {
    const filter = states?.length ? `AND state = ANY($4)` : "";
    const args: unknown[] = [batchId, afterLine, limit, ...(states?.length ? [states] : [])];
    if (maxBytes === undefined) {
      return this.db.rows<FinishedItem>(
        `SELECT id, line, custom_id, state, status_code, request_id, response_body, error_code, error_message
           FROM request_items WHERE batch_id = $1 AND line > $2 ${filter} ORDER BY line LIMIT $3`,
        args,
      );
    }
    // One query: the running size of the page so far cuts it where the next row would pass maxBytes (the first row
    // always comes), so a page never holds more than it may.
    args.push(maxBytes);
    return this.db.rows<FinishedItem>(
      `SELECT id, line, custom_id, state, status_code, request_id, response_body, error_code, error_message
         FROM (SELECT *, row_number() OVER w AS n,
                      sum(coalesce(octet_length(response_body), 0) + coalesce(octet_length(error_message), 0)) OVER w AS upto
                 FROM (SELECT id, line, custom_id, state, status_code, request_id, response_body, error_code, error_message
                         FROM request_items WHERE batch_id = $1 AND line > $2 ${filter} ORDER BY line LIMIT $3) page
               WINDOW w AS (ORDER BY line)) sized
        WHERE n = 1 OR upto <= $${args.length}
        ORDER BY line`,
      args,
    );
  }

  async hasItemsAfter(batchId: string, afterLine: number, states?: readonly ItemState[]): Promise<boolean> {
    const filter = states?.length ? `AND state = ANY($3)` : "";
    return (await this.db.rows(`SELECT 1 FROM request_items WHERE batch_id = $1 AND line > $2 ${filter} LIMIT 1`, [batchId, afterLine, ...(states?.length ? [states] : [])])).length > 0;
  }

  async beginFinalizeAttempt(batchId: string): Promise<number> {
    const [row] = await this.db.rows<{ finalize_attempts: number; total: number | null }>(
      `UPDATE batches SET finalize_attempts = finalize_attempts + 1 WHERE id = $1
       RETURNING finalize_attempts, (SELECT total FROM batch_counts WHERE batch_id = $1) AS total`,
      [batchId],
    );
    // The result pages filter by state, and the statistics still say these items are queued (as at ingest): the
    // planner then guessed a handful of rows and read each page by a bitmap scan and sort of every later line (25 ms
    // a page of 1,000 at 50,000 items). Fresh statistics first, for a batch large enough to tip them.
    if ((row?.total ?? 0) >= ANALYZE_AFTER_ROWS) await this.db.rows(`ANALYZE request_items (batch_id, state)`).catch(() => undefined);
    return row?.finalize_attempts ?? 0;
  }

  async pageRequests(batchId: string, afterLine: number, limit: number, states: readonly ItemState[]): Promise<{ line: number; custom_id: string; body: string }[]> {
    return this.db.rows(`SELECT line, custom_id, body FROM request_items WHERE batch_id = $1 AND line > $2 AND state = ANY($3) ORDER BY line LIMIT $4`, [batchId, afterLine, states, limit]);
  }

  async lineOfItem(batchId: string, itemId: string): Promise<number | null> {
    // Ids made by itemIds end in their line: read it by the primary key. Others (random ids copied from an older store
    // by `openbatch migrate`, which may have the same shape) are looked for among the batch's rows.
    const line = lineInItemId(itemId);
    const [byLine] = line === null ? [] : await this.db.rows<{ line: number }>(`SELECT line FROM request_items WHERE batch_id = $1 AND line = $2 AND id = $3`, [batchId, line, itemId]);
    if (byLine) return byLine.line;
    const [row] = await this.db.rows<{ line: number }>(`SELECT line FROM request_items WHERE batch_id = $1 AND id = $2`, [batchId, itemId]);
    return row?.line ?? null;
  }

  async maxLine(batchId: string): Promise<number> {
    const [row] = await this.db.rows<{ n: number }>(`SELECT coalesce(max(line), 0) AS n FROM request_items WHERE batch_id = $1`, [batchId]);
    return row!.n;
  }

  async deleteBatch(batchId: string): Promise<void> {
    await this.db.tx(async (c) => {
      for (const sql of [
        `DELETE FROM request_items WHERE batch_id = $1`,
        `DELETE FROM batch_counts WHERE batch_id = $1`,
        `DELETE FROM batches WHERE id = $1`,
        `DELETE FROM vendor_jobs WHERE batch_id = $1`,
        `DELETE FROM native_runs WHERE batch_id = $1`,
        `DELETE FROM vendor_job_progress WHERE batch_id = $1`,
      ]) {
        await c.query(sql, [batchId]);
      }
    });
  }

  async hasUnfinished(batchId: string): Promise<boolean> {
    // Two probes, one per partial index (items_queued, items_in_flight).
    const [row] = await this.db.rows<{ any: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM request_items WHERE batch_id = $1 AND state = 'queued')
           OR EXISTS (SELECT 1 FROM request_items WHERE batch_id = $1 AND state = 'in_flight') AS any`,
      [batchId],
    );
    return row!.any;
  }

  async nextAttemptAt(batchId: string): Promise<number | null> {
    // ORDER BY … LIMIT 1, not min(): with statistics that predate the batch's rows the planner aggregated every queued
    // entry of the index (2.9 ms at 10,000 queued) instead of reading its first.
    const [row] = await this.db.rows<{ t: number }>(
      `SELECT next_attempt_at AS t FROM request_items WHERE batch_id = $1 AND state = 'queued' ORDER BY next_attempt_at LIMIT 1`,
      [batchId],
    );
    return row?.t ?? null;
  }

  /**
   * A secret kept in the database (the key vault's, when OPENBATCH_SECRET is not set), created once: every process
   * reads the same one. @param create makes the value when none is stored yet.
   */
  async setting(key: string, create: () => string): Promise<string> {
    await this.db.rows(`INSERT INTO openbatch_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, create()]);
    return (await this.db.rows<{ value: string }>(`SELECT value FROM openbatch_settings WHERE key = $1`, [key]))[0]!.value;
  }

  /**
   * Stops the heartbeat and LISTEN, returns this process's leases to the queue at once (its calls were stopped before
   * close; others need not wait for the lease to expire), forgets its workers, and closes the pool.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const ids = [...this.workers.keys()];
    if (ids.length > 0) {
      await queue
        .returnWorkerLeases(this.db, ids)
        .catch(() => undefined);
    }
    await this.listener?.end().catch(() => undefined);
    await this.lockClient?.end().catch(() => undefined);
    await this.db.close();
  }
}
