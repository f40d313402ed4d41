import pg from "pg";
import type { Batch, BatchStatus, BatchUsage, ItemOutcome, ItemState, RequestCounts, RequestItem } from "../../core/batch.js";
import { canTransition, isTerminal } from "../../core/batch.js";
import { invalidRequest } from "../../core/errors.js";
import { newId } from "../../core/ids.js";
import type { ParsedRequestLine } from "../../core/request-line.js";
import type { BatchListQuery, FileRecord, FinishedItem, OutcomeRecord, Page, Store } from "../store.js";
import { PgDatabase, type Queryable } from "./db.js";
import { PgWebhookOutbox } from "./webhook-outbox.js";
import { PgVendorJobs } from "./vendor-jobs.js";
import { PgBudgets } from "./budgets.js";

type Row = Record<string, unknown>;

/** The channel NOTIFY wakes dispatchers on (payload: a batch id, or "" for any). */
export const WORK_CHANNEL = "openbatch_work";

const BATCH_JSON_COLUMNS = new Set(["errors", "metadata"]);
/** Columns a patch may set: the Batch fields (keys come from code, never from callers, but are still checked). */
const BATCH_COLUMNS = new Set([
  "dialect", "owner", "endpoint", "model", "provider", "input_file_id", "completion_window", "status", "final_status", "errors",
  "output_file_id", "error_file_id", "metadata", "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at",
  "failed_at", "expired_at", "cancelling_at", "cancelled_at", "priority", "name", "description", "output_expires_after",
]);
/** What an erased upstream key leaves in `provider_key` (as in the SQLite store): not base64, so never a sealed key. */
const ERASED_PROVIDER_KEY = "-erased-";
/** Rows of one multi-row INSERT of items (PostgreSQL allows 65535 parameters; 5 per row). */
const INSERT_ROWS = 2000;

function toBatch(row: Row): Batch {
  const b = { ...row } as Record<string, unknown>;
  delete b.seq;
  delete b.provider_key;
  delete b.finalize_attempts;
  b.errors = row.errors ? JSON.parse(row.errors as string) : null;
  b.metadata = row.metadata ? JSON.parse(row.metadata as string) : null;
  return b as unknown as Batch;
}

function toFile(row: Row): FileRecord {
  const f = { ...row } as Record<string, unknown>;
  delete f.seq;
  return f as unknown as FileRecord;
}

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
    await this.db.rows(
      `INSERT INTO workers (id, providers, started_at, last_seen) VALUES ($1, $2, $3, $3)
       ON CONFLICT (id) DO UPDATE SET providers = excluded.providers, last_seen = excluded.last_seen`,
      [workerId, providers, now],
    );
    await this.budgets.refresh(now, this.deadAfterMs);
  }

  /** One heartbeat: our workers are alive; dead workers' leases go back to the queue; budget shares are refreshed. */
  private async beat(): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    if (this.workers.size > 0) {
      await this.db.rows(`UPDATE workers SET last_seen = $2 WHERE id = ANY($1)`, [[...this.workers.keys()], now]);
    }
    await this.returnDeadLeases(now);
    await this.budgets.refresh(now, this.deadAfterMs);
  }

  /**
   * Returns to the queue every item leased by a worker whose heartbeat stopped, and forgets those workers.
   * @returns items returned.
   */
  async returnDeadLeases(now = Date.now()): Promise<number> {
    return this.db.tx(async (c) => {
      const dead = (await c.query<{ id: string }>(`DELETE FROM workers WHERE last_seen < $1 AND NOT (id = ANY($2)) RETURNING id`, [now - this.deadAfterMs, [...this.workers.keys()]])).rows.map((r) => r.id);
      if (dead.length === 0) return 0;
      const n = (
        await c.query(
          `UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL
            WHERE state = 'in_flight' AND lease_owner = ANY($1)`,
          [dead],
        )
      ).rowCount ?? 0;
      if (n > 0) await this.notify(c, "");
      return n;
    });
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
    await q.query(`SELECT pg_notify($1, $2)`, [WORK_CHANNEL, batchId]);
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
    await this.db.rows(
      `INSERT INTO files (id, owner, filename, purpose, bytes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [f.id, f.owner, f.filename, f.purpose, f.bytes, f.created_at, f.expires_at],
    );
  }

  async getFile(id: string): Promise<FileRecord | null> {
    const [row] = await this.db.rows(`SELECT * FROM files WHERE id = $1`, [id]);
    return row ? toFile(row) : null;
  }

  async listFiles(q: { owner: string | null; purpose?: string; order: "asc" | "desc"; after?: string; limit: number; liveAt?: number }): Promise<Page<FileRecord>> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    if (q.owner !== null) where.push(`owner = ${arg(q.owner)}`);
    if (q.purpose) where.push(`purpose = ${arg(q.purpose)}`);
    if (q.liveAt !== undefined) where.push(`(expires_at IS NULL OR expires_at > ${arg(q.liveAt)})`);
    if (q.after) {
      const desc = q.order === "desc";
      where.push(`seq ${desc ? "<" : ">"} coalesce((SELECT seq FROM files WHERE id = ${arg(q.after)}), ${desc ? "-1" : "9223372036854775807"})`);
    }
    const rows = await this.db.rows(
      `SELECT * FROM files ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq ${q.order === "desc" ? "DESC" : "ASC"} LIMIT ${arg(q.limit + 1)}`,
      args,
    );
    return { data: rows.slice(0, q.limit).map(toFile), has_more: rows.length > q.limit };
  }

  async deleteFile(id: string): Promise<boolean> {
    return ((await this.db.pool.query(`DELETE FROM files WHERE id = $1`, [id])).rowCount ?? 0) > 0;
  }

  async expiredFiles(now: number, limit: number): Promise<FileRecord[]> {
    return (await this.db.rows(`SELECT * FROM files WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, [now, limit])).map(toFile);
  }

  async insertBatch(b: Batch, providerKey: string | null): Promise<void> {
    const row: Row = { ...b, provider_key: providerKey, errors: b.errors && JSON.stringify(b.errors), metadata: b.metadata && JSON.stringify(b.metadata) };
    const cols = Object.keys(row);
    // As in SQLite, where an unknown key fails the INSERT: a Batch field without a column must not vanish silently.
    for (const c of cols) if (c !== "id" && c !== "provider_key" && !BATCH_COLUMNS.has(c)) throw new Error(`Unknown batch column ${c}`);
    await this.db.tx(async (c) => {
      await c.query(`INSERT INTO batches (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`, cols.map((k) => row[k] ?? null));
      await c.query(`INSERT INTO batch_counts (batch_id) VALUES ($1)`, [b.id]);
    });
  }

  async getBatch(id: string): Promise<Batch | null> {
    const [row] = await this.db.rows(`SELECT * FROM batches WHERE id = $1`, [id]);
    return row ? toBatch(row) : null;
  }

  async listBatches(q: BatchListQuery & { owner: string | null }): Promise<Page<Batch>> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    if (q.owner !== null) where.push(`owner = ${arg(q.owner)}`);
    if (q.dialects?.length) where.push(`dialect = ANY(${arg(q.dialects)})`);
    if (q.after) where.push(`seq < coalesce((SELECT seq FROM batches WHERE id = ${arg(q.after)}), -1)`);
    if (q.before) where.push(`seq > coalesce((SELECT seq FROM batches WHERE id = ${arg(q.before)}), 9223372036854775807)`);
    // Paging backwards reads the oldest newer rows first, then turns them round.
    const order = q.before && !q.after ? "ASC" : "DESC";
    const rows = await this.db.rows(`SELECT * FROM batches ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq ${order} LIMIT ${arg(q.limit + 1)}`, args);
    const page = rows.slice(0, q.limit);
    if (order === "ASC") page.reverse();
    return { data: page.map(toBatch), has_more: rows.length > q.limit };
  }

  async batchesInStatus(statuses: readonly BatchStatus[]): Promise<Batch[]> {
    return (await this.db.rows(`SELECT * FROM batches WHERE status = ANY($1) ORDER BY seq`, [statuses])).map(toBatch);
  }

  async updateBatch(id: string, from: readonly BatchStatus[], patch: Partial<Batch>): Promise<boolean> {
    const to = patch.status;
    if (to !== undefined && from.some((f) => f !== to && !canTransition(f, to))) {
      throw new Error(`Illegal batch transition ${from.join("|")} → ${to}`);
    }
    const args: unknown[] = [id, from];
    const sets: string[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (!BATCH_COLUMNS.has(k)) throw new Error(`Unknown batch column ${k}`);
      args.push(BATCH_JSON_COLUMNS.has(k) && v !== null && v !== undefined ? JSON.stringify(v) : (v ?? null));
      sets.push(`${k} = $${args.length}`);
    }
    if (sets.length === 0) return (await this.db.rows(`SELECT 1 FROM batches WHERE id = $1 AND status = ANY($2)`, args)).length > 0;
    return this.db.tx(async (c) => {
      // The row lock taken here orders concurrent compare-and-sets: the second sees the first's status.
      const before = (await c.query<{ status: BatchStatus; dialect: string }>(`SELECT status, dialect FROM batches WHERE id = $1 FOR UPDATE`, [id])).rows[0];
      if (!before || !from.includes(before.status)) return false;
      await c.query(`UPDATE batches SET ${sets.join(", ")} WHERE id = $1 AND status = ANY($2)`, args);
      if (to !== undefined && isTerminal(to)) {
        // A batch that ends queues its webhook event in the same transaction: never lost, never sent for a batch that did not end.
        const endedAt = patch[`${to}_at` as keyof Batch];
        await this.webhookOutbox.recordTransition(c, id, before.dialect, before.status, to, typeof endedAt === "number" ? endedAt : Date.now());
      }
      if (to !== undefined && to !== before.status) await this.notify(c, id);
      return true;
    });
  }

  async getProviderKey(batchId: string): Promise<string | null> {
    const [row] = await this.db.rows<{ provider_key: string | null }>(`SELECT provider_key FROM batches WHERE id = $1`, [batchId]);
    const sealed = row?.provider_key ?? null;
    return sealed === ERASED_PROVIDER_KEY ? null : sealed;
  }

  async clearProviderKey(batchId: string): Promise<void> {
    // A tombstone, not NULL: a retry must know the batch ran on the caller's key (see Engine.retryBatch).
    await this.db.rows(`UPDATE batches SET provider_key = $1 WHERE id = $2 AND provider_key IS NOT NULL`, [ERASED_PROVIDER_KEY, batchId]);
  }

  async hadProviderKey(batchId: string): Promise<boolean> {
    const [row] = await this.db.rows<{ had: boolean }>(`SELECT provider_key IS NOT NULL AS had FROM batches WHERE id = $1`, [batchId]);
    return row?.had === true;
  }

  async insertItems(batchId: string, lines: ParsedRequestLine[]): Promise<void> {
    try {
      await this.db.tx(async (c) => {
        for (let i = 0; i < lines.length; i += INSERT_ROWS) {
          const slice = lines.slice(i, i + INSERT_ROWS);
          await c.query(
            `INSERT INTO request_items (batch_id, line, id, custom_id, body)
             SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[])`,
            [batchId, slice.map((l) => l.line), slice.map(() => newId("batch_req_")), slice.map((l) => l.custom_id), slice.map((l) => l.body)],
          );
        }
        await c.query(`UPDATE batch_counts SET total = total + $1 WHERE batch_id = $2`, [lines.length, batchId]);
        await this.notify(c, batchId);
      });
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
    if (limit <= 0) return [];
    // SKIP LOCKED: rows another worker is claiming right now are passed over, not waited for.
    const rows = await this.db.rows<RequestItem>(
      `WITH picked AS (
         SELECT line FROM request_items
          WHERE batch_id = $1 AND state = 'queued' AND next_attempt_at <= $2
          ORDER BY next_attempt_at, line LIMIT $3
          FOR UPDATE SKIP LOCKED)
       UPDATE request_items r
          SET state = 'in_flight', lease_owner = $4, lease_expires_at = $5, attempts = r.attempts + 1
         FROM picked
        WHERE r.batch_id = $1 AND r.line = picked.line
       RETURNING r.id, r.batch_id, r.line, r.custom_id, r.body, r.state, r.attempts`,
      [batchId, now, limit, leaseOwner, leaseUntil],
    );
    return rows.sort((a, b) => a.line - b.line);
  }

  async requeueItem(batchId: string, line: number, leaseOwner: string, nextAttemptAt: number): Promise<boolean> {
    const r = await this.db.pool.query(
      `UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $1
        WHERE batch_id = $2 AND line = $3 AND state = 'in_flight' AND lease_owner = $4`,
      // BIGINT column: a jittered backoff is fractional ms, which PostgreSQL refuses ("invalid input syntax for type
      // bigint"), leaving the item leased until its lease expired (about a minute) instead of retried.
      [Math.ceil(nextAttemptAt), batchId, line, leaseOwner],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async recordOutcomes(records: OutcomeRecord[], now: number): Promise<number> {
    if (records.length === 0) return 0;
    const col = <T>(f: (r: OutcomeRecord) => T) => records.map(f);
    // One statement: write each outcome whose lease this owner still holds, and add what was written to the counters.
    const [row] = await this.db.rows<{ n: number }>(
      `WITH v AS (
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[],
                              $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
           AS v(batch_id, line, lease_owner, state, status_code, request_id, response_body, error_code, error_message,
                input_tokens, cached_tokens, output_tokens, reasoning_tokens)),
       done AS (
         UPDATE request_items r
            SET state = v.state, status_code = v.status_code, request_id = v.request_id, response_body = v.response_body,
                error_code = v.error_code, error_message = v.error_message, input_tokens = v.input_tokens,
                cached_tokens = v.cached_tokens, output_tokens = v.output_tokens, reasoning_tokens = v.reasoning_tokens,
                finished_at = $14, lease_owner = NULL, lease_expires_at = NULL
           FROM v
          WHERE r.batch_id = v.batch_id AND r.line = v.line AND r.state = 'in_flight' AND r.lease_owner = v.lease_owner
         RETURNING r.batch_id, r.state, r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens),
       counted AS (
         UPDATE batch_counts c
            SET succeeded = c.succeeded + d.succeeded, failed = c.failed + d.failed, expired = c.expired + d.expired,
                cancelled = c.cancelled + d.cancelled, input_tokens = c.input_tokens + d.input_tokens,
                cached_tokens = c.cached_tokens + d.cached_tokens, output_tokens = c.output_tokens + d.output_tokens,
                reasoning_tokens = c.reasoning_tokens + d.reasoning_tokens
           FROM (SELECT batch_id,
                        count(*) FILTER (WHERE state = 'succeeded') AS succeeded, count(*) FILTER (WHERE state = 'failed') AS failed,
                        count(*) FILTER (WHERE state = 'expired') AS expired, count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                        sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
                        sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens
                   FROM done GROUP BY batch_id) d
          WHERE c.batch_id = d.batch_id)
       SELECT count(*)::int AS n FROM done`,
      [
        col((r) => r.batch_id),
        col((r) => r.line),
        col((r) => r.lease_owner),
        col((r) => r.outcome.state),
        col((r) => r.outcome.status_code),
        col((r) => r.outcome.request_id),
        col((r) => r.outcome.response_body),
        col((r) => r.outcome.error_code),
        col((r) => r.outcome.error_message),
        col((r) => r.outcome.usage?.input_tokens ?? 0),
        col((r) => r.outcome.usage?.cached_tokens ?? 0),
        col((r) => r.outcome.usage?.output_tokens ?? 0),
        col((r) => r.outcome.usage?.reasoning_tokens ?? 0),
        now,
      ],
    );
    return row!.n;
  }

  async settleUnfinished(batchId: string, outcome: ItemOutcome, now: number): Promise<number> {
    return settleLines(this.db.pool, batchId, 0, 2 ** 31 - 1, outcome, now);
  }

  async releaseLeases(batchId: string, now: number): Promise<number> {
    const cutoff = Number.isFinite(now) ? now : Number.MAX_SAFE_INTEGER;
    const r = await this.db.pool.query(
      `UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL
        WHERE batch_id = $1 AND state = 'in_flight' AND lease_expires_at < $2`,
      [batchId, cutoff],
    );
    const n = r.rowCount ?? 0;
    if (n > 0) await this.notify(this.db.pool, batchId);
    return n;
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
    if (maxBytes !== undefined) {
      // Sizes first, then only the rows that fit: a page never holds more than it may.
      const sizes = await this.db.rows<{ size: number }>(
        `SELECT (coalesce(octet_length(response_body), 0) + coalesce(octet_length(error_message), 0))::bigint AS size
           FROM request_items WHERE batch_id = $1 AND line > $2 ${filter} ORDER BY line LIMIT $3`,
        args,
      );
      let bytes = 0;
      let n = 0;
      while (n < sizes.length && (n === 0 || bytes + sizes[n]!.size <= maxBytes)) bytes += sizes[n++]!.size;
      if (n === 0) return [];
      args[2] = n;
    }
    return this.db.rows<FinishedItem>(
      `SELECT id, line, custom_id, state, status_code, request_id, response_body, error_code, error_message
         FROM request_items WHERE batch_id = $1 AND line > $2 ${filter} ORDER BY line LIMIT $3`,
      args,
    );
  }

  async hasItemsAfter(batchId: string, afterLine: number, states?: readonly ItemState[]): Promise<boolean> {
    const filter = states?.length ? `AND state = ANY($3)` : "";
    return (await this.db.rows(`SELECT 1 FROM request_items WHERE batch_id = $1 AND line > $2 ${filter} LIMIT 1`, [batchId, afterLine, ...(states?.length ? [states] : [])])).length > 0;
  }

  async beginFinalizeAttempt(batchId: string): Promise<number> {
    const [row] = await this.db.rows<{ finalize_attempts: number }>(`UPDATE batches SET finalize_attempts = finalize_attempts + 1 WHERE id = $1 RETURNING finalize_attempts`, [batchId]);
    return row?.finalize_attempts ?? 0;
  }

  async pageRequests(batchId: string, afterLine: number, limit: number, states: readonly ItemState[]): Promise<{ line: number; custom_id: string; body: string }[]> {
    return this.db.rows(`SELECT line, custom_id, body FROM request_items WHERE batch_id = $1 AND line > $2 AND state = ANY($3) ORDER BY line LIMIT $4`, [batchId, afterLine, states, limit]);
  }

  async lineOfItem(batchId: string, itemId: string): Promise<number | null> {
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
    return (await this.db.rows(`SELECT 1 FROM request_items WHERE batch_id = $1 AND state IN ('queued', 'in_flight') LIMIT 1`, [batchId])).length > 0;
  }

  async nextAttemptAt(batchId: string): Promise<number | null> {
    const [row] = await this.db.rows<{ t: number | null }>(`SELECT min(next_attempt_at) AS t FROM request_items WHERE batch_id = $1 AND state = 'queued'`, [batchId]);
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
      await this.db
        .tx(async (c) => {
          const n = (await c.query(`UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL WHERE state = 'in_flight' AND lease_owner = ANY($1)`, [ids])).rowCount ?? 0;
          await c.query(`DELETE FROM workers WHERE id = ANY($1)`, [ids]);
          if (n > 0) await this.notify(c, "");
        })
        .catch(() => undefined);
    }
    await this.listener?.end().catch(() => undefined);
    await this.lockClient?.end().catch(() => undefined);
    await this.db.close();
  }
}

/**
 * Ends every queued or in-flight item of a batch with line in `first..last` with `outcome`, and counts them, in one
 * statement. @returns rows written.
 */
export async function settleLines(q: Queryable, batchId: string, first: number, last: number, outcome: ItemOutcome, now: number): Promise<number> {
  const column = ({ succeeded: "succeeded", failed: "failed", expired: "expired", cancelled: "cancelled" } as const)[outcome.state];
  const [row] = (
    await q.query<{ n: number }>(
      `WITH done AS (
         UPDATE request_items
            SET state = $4, status_code = $5, request_id = $6, response_body = $7, error_code = $8, error_message = $9,
                finished_at = $10, lease_owner = NULL, lease_expires_at = NULL
          WHERE batch_id = $1 AND line BETWEEN $2 AND $3 AND state IN ('queued', 'in_flight')
         RETURNING 1),
       n AS (SELECT count(*)::int AS n FROM done),
       counted AS (UPDATE batch_counts SET ${column} = ${column} + (SELECT n FROM n) WHERE batch_id = $1)
       SELECT n FROM n`,
      [batchId, first, last, outcome.state, outcome.status_code, outcome.request_id, outcome.response_body, outcome.error_code, outcome.error_message, now],
    )
  ).rows;
  return row!.n;
}
