import type { Batch, BatchStatus } from "../../core/batch.js";
import { canTransition, isTerminal } from "../../core/batch.js";
import type { BatchListQuery, Page } from "../store.js";
import { toBatch } from "../batch-row.js";
import type { PgDatabase } from "./db.js";
import type { PgWebhookOutbox } from "./webhook-outbox.js";
import { notifyWork } from "./work-channel.js";

// The `batches` rows of the shared store (Store's batch operations; see store.ts for what each promises). A status
// changes by compare-and-set under the row's lock, and a batch that ends queues its webhook event in that transaction.

type Row = Record<string, unknown>;

const BATCH_JSON_COLUMNS = new Set(["errors", "metadata"]);
/** Columns a patch may set: the Batch fields (keys come from code, never from callers, but are still checked). */
const BATCH_COLUMNS = new Set([
  "dialect", "owner", "endpoint", "model", "provider", "input_file_id", "completion_window", "status", "final_status", "errors",
  "output_file_id", "error_file_id", "metadata", "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at",
  "failed_at", "expired_at", "cancelling_at", "cancelled_at", "priority", "name", "description", "output_expires_after",
]);
/** What an erased upstream key leaves in `provider_key` (as in the SQLite store): not base64, so never a sealed key. */
const ERASED_PROVIDER_KEY = "-erased-";

/** `Store.insertBatch` on PostgreSQL: what it promises is documented in store.ts. */
export async function insertBatch(db: PgDatabase, b: Batch, providerKey: string | null): Promise<void> {
  const row: Row = { ...b, provider_key: providerKey, errors: b.errors && JSON.stringify(b.errors), metadata: b.metadata && JSON.stringify(b.metadata) };
  const cols = Object.keys(row);
  // As in SQLite, where an unknown key fails the INSERT: a Batch field without a column must not vanish silently.
  for (const c of cols) if (c !== "id" && c !== "provider_key" && !BATCH_COLUMNS.has(c)) throw new Error(`Unknown batch column ${c}`);
  await db.tx(async (c) => {
    await c.query(`INSERT INTO batches (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`, cols.map((k) => row[k] ?? null));
    await c.query(`INSERT INTO batch_counts (batch_id) VALUES ($1)`, [b.id]);
  });
}

/** `Store.getBatch` on PostgreSQL: what it promises is documented in store.ts. */
export async function getBatch(db: PgDatabase, id: string): Promise<Batch | null> {
  const [row] = await db.rows(`SELECT * FROM batches WHERE id = $1`, [id]);
  return row ? toBatch(row) : null;
}

/** `Store.listBatches` on PostgreSQL: what it promises is documented in store.ts. */
export async function listBatches(db: PgDatabase, q: BatchListQuery & { owner: string | null }): Promise<Page<Batch>> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => (args.push(v), `$${args.length}`);
  if (q.owner !== null) where.push(`owner = ${arg(q.owner)}`);
  if (q.dialects?.length) where.push(`dialect = ANY(${arg(q.dialects)})`);
  if (q.after) where.push(`seq < coalesce((SELECT seq FROM batches WHERE id = ${arg(q.after)}), -1)`);
  if (q.before) where.push(`seq > coalesce((SELECT seq FROM batches WHERE id = ${arg(q.before)}), 9223372036854775807)`);
  // Paging backwards reads the oldest newer rows first, then turns them round.
  const order = q.before && !q.after ? "ASC" : "DESC";
  const rows = await db.rows(`SELECT * FROM batches ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq ${order} LIMIT ${arg(q.limit + 1)}`, args);
  const page = rows.slice(0, q.limit);
  if (order === "ASC") page.reverse();
  return { data: page.map(toBatch), has_more: rows.length > q.limit };
}

/** `Store.batchesInStatus` on PostgreSQL: what it promises is documented in store.ts. */
export async function batchesInStatus(db: PgDatabase, statuses: readonly BatchStatus[]): Promise<Batch[]> {
  return (await db.rows(`SELECT * FROM batches WHERE status = ANY($1) ORDER BY seq`, [statuses])).map(toBatch);
}

/** `Store.updateBatch` on PostgreSQL: what it promises is documented in store.ts. */
export async function updateBatch(db: PgDatabase, outbox: PgWebhookOutbox, id: string, from: readonly BatchStatus[], patch: Partial<Batch>): Promise<boolean> {
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
  if (sets.length === 0) return (await db.rows(`SELECT 1 FROM batches WHERE id = $1 AND status = ANY($2)`, args)).length > 0;
  return db.tx(async (c) => {
    // The row lock taken here orders concurrent compare-and-sets: the second sees the first's status.
    const before = (await c.query<{ status: BatchStatus; dialect: string }>(`SELECT status, dialect FROM batches WHERE id = $1 FOR UPDATE`, [id])).rows[0];
    if (!before || !from.includes(before.status)) return false;
    await c.query(`UPDATE batches SET ${sets.join(", ")} WHERE id = $1 AND status = ANY($2)`, args);
    if (to !== undefined && isTerminal(to)) {
      // A batch that ends queues its webhook event in the same transaction: never lost, never sent for a batch that did not end.
      const endedAt = patch[`${to}_at` as keyof Batch];
      await outbox.recordTransition(c, id, before.dialect, before.status, to, typeof endedAt === "number" ? endedAt : Date.now());
    }
    if (to !== undefined && to !== before.status) await notifyWork(c, id);
    return true;
  });
}

/** `Store.getProviderKey` on PostgreSQL: what it promises is documented in store.ts. */
export async function getProviderKey(db: PgDatabase, batchId: string): Promise<string | null> {
  const [row] = await db.rows<{ provider_key: string | null }>(`SELECT provider_key FROM batches WHERE id = $1`, [batchId]);
  const sealed = row?.provider_key ?? null;
  return sealed === ERASED_PROVIDER_KEY ? null : sealed;
}

/** `Store.clearProviderKey` on PostgreSQL: what it promises is documented in store.ts. */
export async function clearProviderKey(db: PgDatabase, batchId: string): Promise<void> {
  // A tombstone, not NULL: a retry must know the batch ran on the caller's key (see Engine.retryBatch).
  await db.rows(`UPDATE batches SET provider_key = $1 WHERE id = $2 AND provider_key IS NOT NULL`, [ERASED_PROVIDER_KEY, batchId]);
}

/** `Store.hadProviderKey` on PostgreSQL: what it promises is documented in store.ts. */
export async function hadProviderKey(db: PgDatabase, batchId: string): Promise<boolean> {
  const [row] = await db.rows<{ had: boolean }>(`SELECT provider_key IS NOT NULL AS had FROM batches WHERE id = $1`, [batchId]);
  return row?.had === true;
}
