import type { ItemOutcome, RequestItem } from "../../core/batch.js";
import type { OutcomeRecord } from "../store.js";
import type { PgDatabase, Queryable } from "./db.js";
import { notifyWork } from "./work-channel.js";

// The queue operations of the shared store, as SQL: claims (`FOR UPDATE SKIP LOCKED`, a lease with an expiry), lease
// returns, and outcomes written only while their writer still holds the lease, counted in the same statement.

/**
 * Where this process's last claim of a batch ended in `items_queued` order (next_attempt_at, line): a hint the next
 * claim starts from. Claimed items leave their queued row versions in the index until VACUUM, at its head (claims take
 * it in order), and a scan from the start steps over every one of them: at 25,000 items claimed the first live entry
 * took 1.3 ms to reach, so claims grew quadratic over a batch.
 */
export type ClaimCursors = Map<string, { at: number; line: number }>;

/** `Store.claimItems` on PostgreSQL: what it promises is documented in store.ts. */
export async function claimItems(db: PgDatabase, cursors: ClaimCursors, batchId: string, leaseOwner: string, limit: number, now: number, leaseUntil: number): Promise<RequestItem[]> {
  if (limit <= 0) return [];
  const cursor = cursors.get(batchId);
  let rows = await claimAfter(db, batchId, leaseOwner, limit, now, leaseUntil, cursor);
  // Items behind the cursor (a lease returned to the queue, a retry due sooner than the cursor's time) are found by a
  // scan from the start once the cursor's way comes up short.
  if (cursor && rows.length < limit) rows = rows.concat(await claimAfter(db, batchId, leaseOwner, limit - rows.length, now, leaseUntil, undefined));
  if (rows.length < limit) cursors.delete(batchId);
  else {
    const last = rows.reduce((m, r) => (r.next_attempt_at > m.next_attempt_at || (r.next_attempt_at === m.next_attempt_at && r.line > m.line) ? r : m));
    cursors.set(batchId, { at: last.next_attempt_at, line: last.line });
  }
  return rows.map(({ next_attempt_at: _, ...item }) => item).sort((a, b) => a.line - b.line);
}

/** One claim statement: the first `limit` due queued items after `cursor` (from the start without one). */
async function claimAfter(
  db: PgDatabase,
  batchId: string,
  leaseOwner: string,
  limit: number,
  now: number,
  leaseUntil: number,
  cursor: { at: number; line: number } | undefined,
): Promise<(RequestItem & { next_attempt_at: number })[]> {
  // SKIP LOCKED: rows another worker is claiming right now are passed over, not waited for.
  return db.rows<RequestItem & { next_attempt_at: number }>(
    `WITH picked AS (
       SELECT line FROM request_items
        WHERE batch_id = $1 AND state = 'queued' AND next_attempt_at <= $2 ${cursor ? "AND (next_attempt_at, line) > ($6, $7)" : ""}
        ORDER BY next_attempt_at, line LIMIT $3
        FOR UPDATE SKIP LOCKED)
     UPDATE request_items r
        SET state = 'in_flight', lease_owner = $4, lease_expires_at = $5, attempts = r.attempts + 1
       FROM picked
      WHERE r.batch_id = $1 AND r.line = picked.line
     RETURNING r.id, r.batch_id, r.line, r.custom_id, r.body, r.state, r.attempts, r.next_attempt_at`,
    [batchId, now, limit, leaseOwner, leaseUntil, ...(cursor ? [cursor.at, cursor.line] : [])],
  );
}

/** `Store.requeueItem` on PostgreSQL: what it promises is documented in store.ts. */
export async function requeueItem(db: PgDatabase, batchId: string, line: number, leaseOwner: string, nextAttemptAt: number): Promise<boolean> {
  const r = await db.pool.query(
    `UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $1
      WHERE batch_id = $2 AND line = $3 AND state = 'in_flight' AND lease_owner = $4`,
    // BIGINT column: a jittered backoff is fractional ms, which PostgreSQL refuses ("invalid input syntax for type
    // bigint"), leaving the item leased until its lease expired (about a minute) instead of retried.
    [Math.ceil(nextAttemptAt), batchId, line, leaseOwner],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * The SET list of an outcome write: the item's outcome from `v` (a row of `outcomesFrom`), its finish time from the
 * parameter `finishedAt` (e.g. "$2"), and its lease ended. Shared with the vendor-job recorder.
 */
export function setOutcome(finishedAt: string): string {
  return `state = v.state, status_code = v.status_code, request_id = v.request_id, response_body = v.response_body,
          error_code = v.error_code, error_message = v.error_message, input_tokens = v.input_tokens,
          cached_tokens = v.cached_tokens, output_tokens = v.output_tokens, reasoning_tokens = v.reasoning_tokens,
          finished_at = ${finishedAt}, lease_owner = NULL, lease_expires_at = NULL`;
}

/** The SET list that adds the per-state counts and token sums of `d` to the batch_counts row `c`. Shared as above. */
export const ADD_COUNTS = `succeeded = c.succeeded + d.succeeded, failed = c.failed + d.failed, expired = c.expired + d.expired,
          cancelled = c.cancelled + d.cancelled, input_tokens = c.input_tokens + d.input_tokens,
          cached_tokens = c.cached_tokens + d.cached_tokens, output_tokens = c.output_tokens + d.output_tokens,
          reasoning_tokens = c.reasoning_tokens + d.reasoning_tokens`;

/**
 * The rows `v` of a JSON array of outcomeRow objects in parameter `param` (e.g. "$1"): outcomes go as one JSON text,
 * not thirteen array parameters, whose every element node-postgres escaped in JavaScript. Shared with the vendor-job
 * recorder.
 */
export function outcomesFrom(param: string): string {
  return `json_to_recordset(${param}::json)
         AS v(batch_id text, line int, lease_owner text, state text, status_code int, request_id text, response_body text,
              error_code text, error_message text, input_tokens bigint, cached_tokens bigint, output_tokens bigint,
              reasoning_tokens bigint)`;
}

/**
 * One outcome as a row of the JSON array recordOutcomes sends (a missing usage counts 0). Texts are made well formed
 * first: JSON.stringify writes a lone surrogate as `\udXXX`, which PostgreSQL's JSON refuses (the whole commit would
 * fail, every time), where the UTF-8 of a text parameter carried one U+FFFD.
 */
export function outcomeRow(r: { batch_id: string; line: number; lease_owner: string | null; outcome: ItemOutcome }): Record<string, unknown> {
  const o = r.outcome;
  // String.prototype.isWellFormed / toWellFormed: Node 20 has them; TypeScript's ES2022 lib does not declare them.
  const text = (t: string | null) => {
    const s = t as unknown as { isWellFormed(): boolean; toWellFormed(): string } | null;
    return s === null || s.isWellFormed() ? t : s.toWellFormed();
  };
  return {
    batch_id: r.batch_id,
    line: r.line,
    lease_owner: r.lease_owner,
    state: o.state,
    status_code: o.status_code,
    request_id: o.request_id,
    response_body: text(o.response_body),
    error_code: o.error_code,
    error_message: text(o.error_message),
    input_tokens: o.usage?.input_tokens ?? 0,
    cached_tokens: o.usage?.cached_tokens ?? 0,
    output_tokens: o.usage?.output_tokens ?? 0,
    reasoning_tokens: o.usage?.reasoning_tokens ?? 0,
  };
}

/**
 * `Store.recordOutcomes` on PostgreSQL: what it promises is documented in store.ts. The outcomes go as one JSON array
 * (outcomesFrom). Measured, against thirteen array parameters (50,000 items, instant upstream, one dispatcher, 3 runs alternating, quiet 2-core box): 4,961 / 5,475 /
 * 5,657 → 5,324 / 5,745 / 5,947 items/s.
 */
export async function recordOutcomes(db: PgDatabase, records: OutcomeRecord[], now: number): Promise<number> {
  if (records.length === 0) return 0;
  // One statement: write each outcome whose lease this owner still holds, and add what was written to the counters.
  // Commits run concurrently (engine/outcome-recorder.ts), and two whose groups span the same batches may lock their
  // batch_counts rows in opposite orders: the deadlock victim is simply run again.
  const [row] = await db.rowsRetrying<{ n: number }>(
    `WITH v AS (
       SELECT * FROM ${outcomesFrom("$1")}),
     done AS (
       UPDATE request_items r
          SET ${setOutcome("$2")}
         FROM v
        WHERE r.batch_id = v.batch_id AND r.line = v.line AND r.state = 'in_flight' AND r.lease_owner = v.lease_owner
       RETURNING r.batch_id, r.state, r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens),
     counted AS (
       UPDATE batch_counts c
          SET ${ADD_COUNTS}
         FROM (SELECT batch_id,
                      count(*) FILTER (WHERE state = 'succeeded') AS succeeded, count(*) FILTER (WHERE state = 'failed') AS failed,
                      count(*) FILTER (WHERE state = 'expired') AS expired, count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                      sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
                      sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens
                 FROM done GROUP BY batch_id) d
        WHERE c.batch_id = d.batch_id)
     SELECT count(*)::int AS n FROM done`,
    [JSON.stringify(records.map(outcomeRow)), now],
  );
  return row!.n;
}

/** `Store.releaseLeases` on PostgreSQL: what it promises is documented in store.ts. */
export async function releaseLeases(db: PgDatabase, batchId: string, now: number): Promise<number> {
  const cutoff = Number.isFinite(now) ? now : Number.MAX_SAFE_INTEGER;
  const r = await db.pool.query(
    `UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL
      WHERE batch_id = $1 AND state = 'in_flight' AND lease_expires_at < $2`,
    [batchId, cutoff],
  );
  const n = r.rowCount ?? 0;
  if (n > 0) await notifyWork(db.pool, batchId);
  return n;
}

/**
 * Returns to the queue every item leased by a worker whose heartbeat is older than `deadAfterMs` (other than
 * `liveWorkers`, this process's own), and forgets those workers. @returns items returned.
 */
export async function returnDeadLeases(db: PgDatabase, now: number, deadAfterMs: number, liveWorkers: string[]): Promise<number> {
  return db.tx(async (c) => {
    const dead = (await c.query<{ id: string }>(`DELETE FROM workers WHERE last_seen < $1 AND NOT (id = ANY($2)) RETURNING id`, [now - deadAfterMs, liveWorkers])).rows.map((r) => r.id);
    if (dead.length === 0) return 0;
    const n = (
      await c.query(
        `UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL
          WHERE state = 'in_flight' AND lease_owner = ANY($1)`,
        [dead],
      )
    ).rowCount ?? 0;
    if (n > 0) await notifyWork(c, "");
    return n;
  });
}

/** Returns to the queue every item leased by `workerIds` (a process closing) and forgets those workers, in one transaction. */
export async function returnWorkerLeases(db: PgDatabase, workerIds: string[]): Promise<void> {
  await db.tx(async (c) => {
    const n = (await c.query(`UPDATE request_items SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL WHERE state = 'in_flight' AND lease_owner = ANY($1)`, [workerIds])).rowCount ?? 0;
    await c.query(`DELETE FROM workers WHERE id = ANY($1)`, [workerIds]);
    if (n > 0) await notifyWork(c, "");
  });
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
