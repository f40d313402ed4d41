import type { ItemOutcome } from "../../core/batch.js";
import type { LineOutcome, NativeRun, RunMode, VendorJob, VendorJobState, VendorJobStore } from "../vendor-jobs.js";
import { VENDOR_JOB_STATES } from "../vendor-jobs.js";
import { ADD_COUNTS, outcomeRow, outcomesFrom, setOutcome, settleLines } from "./item-queue.js";
import type { PgDatabase, Queryable } from "./db.js";

/** Columns of vendor_jobs a caller may write (keys come from code; still checked before they reach SQL). */
const JOB_COLUMNS = new Set([
  "id", "batch_id", "chunk", "provider", "vendor", "endpoint", "first_line", "last_line", "requests", "bytes", "state", "vendor_file_id",
  "vendor_id", "vendor_status", "outcome", "result_ref", "failure", "cancel_requested", "errors", "last_error", "next_attempt_at",
  "created_at", "updated_at",
]);

type Row = Record<string, unknown>;

function toJob(row: Row): VendorJob {
  const j = { ...row } as Record<string, unknown>;
  delete j.seq;
  return j as unknown as VendorJob;
}

function toRun(row: Row): NativeRun {
  return { batch_id: row.batch_id as string, requested: (row.requested as RunMode | null) ?? null, mode: (row.mode as RunMode | null) ?? null, held: row.held === true };
}

/** Native runs and vendor jobs in PostgreSQL (same tables and meaning as store/sqlite/vendor-jobs.ts). */
export class PgVendorJobs implements VendorJobStore {
  constructor(private readonly db: PgDatabase) {}

  async requestMode(batchId: string, mode: RunMode): Promise<void> {
    await this.db.rows(`INSERT INTO native_runs (batch_id, requested) VALUES ($1, $2) ON CONFLICT (batch_id) DO UPDATE SET requested = excluded.requested`, [batchId, mode]);
  }

  async getRun(batchId: string): Promise<NativeRun | null> {
    const [row] = await this.db.rows(`SELECT * FROM native_runs WHERE batch_id = $1`, [batchId]);
    return row ? toRun(row) : null;
  }

  async decide(batchId: string, mode: RunMode): Promise<NativeRun> {
    await this.db.rows(
      `INSERT INTO native_runs (batch_id, mode, held, decided_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (batch_id) DO UPDATE SET mode = excluded.mode, held = excluded.held, decided_at = excluded.decided_at WHERE native_runs.mode IS NULL`,
      [batchId, mode, mode === "native", Date.now()],
    );
    return (await this.getRun(batchId))!;
  }

  async nativeUsage(batchId: string): Promise<{ input_tokens: number; output_tokens: number } | null> {
    const [row] = await this.db.rows<{ input_tokens: number; output_tokens: number }>(`SELECT input_tokens, output_tokens FROM native_runs WHERE batch_id = $1 AND mode = 'native'`, [batchId]);
    return row ?? null;
  }

  async setProgress(jobId: string, batchId: string, counts: { completed: number; failed: number } | null): Promise<void> {
    if (counts === null) {
      await this.db.rows(`DELETE FROM vendor_job_progress WHERE job_id = $1`, [jobId]);
      return;
    }
    await this.db.rows(
      `INSERT INTO vendor_job_progress (job_id, batch_id, completed, failed) VALUES ($1, $2, $3, $4)
       ON CONFLICT (job_id) DO UPDATE SET completed = excluded.completed, failed = excluded.failed`,
      [jobId, batchId, counts.completed, counts.failed],
    );
  }

  async progressOf(batchId: string): Promise<{ completed: number; failed: number }> {
    const [row] = await this.db.rows<{ completed: number; failed: number }>(
      `SELECT coalesce(sum(completed), 0)::bigint AS completed, coalesce(sum(failed), 0)::bigint AS failed FROM vendor_job_progress WHERE batch_id = $1`,
      [batchId],
    );
    return row!;
  }

  async release(batchId: string): Promise<void> {
    await this.db.rows(`UPDATE native_runs SET held = false WHERE batch_id = $1`, [batchId]);
  }

  async heldBatches(): Promise<string[]> {
    return (await this.db.rows<{ batch_id: string }>(`SELECT batch_id FROM native_runs WHERE held`)).map((r) => r.batch_id);
  }

  async insertJob(job: VendorJob, failures: LineOutcome[]): Promise<void> {
    const cols = Object.keys(job).filter((c) => JOB_COLUMNS.has(c));
    await this.db.tx(async (c) => {
      await c.query(`INSERT INTO vendor_jobs (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`, cols.map((k) => (job as unknown as Row)[k] ?? null));
      await record(c, job.batch_id, job.first_line, job.last_line, failures, Date.now());
    });
  }

  async jobsOf(batchId: string): Promise<VendorJob[]> {
    return (await this.db.rows(`SELECT * FROM vendor_jobs WHERE batch_id = $1 ORDER BY chunk`, [batchId])).map(toJob);
  }

  async openJobs(): Promise<VendorJob[]> {
    return (await this.db.rows(`SELECT * FROM vendor_jobs WHERE state NOT IN ('recorded', 'abandoned') ORDER BY seq`)).map(toJob);
  }

  async coveredUpTo(batchId: string): Promise<number> {
    return (await this.db.rows<{ n: number }>(`SELECT coalesce(max(last_line), 0) AS n FROM vendor_jobs WHERE batch_id = $1`, [batchId]))[0]!.n;
  }

  async updateJob(id: string, patch: Partial<Omit<VendorJob, "id" | "batch_id" | "chunk">>): Promise<void> {
    const args: unknown[] = [id, Date.now()];
    const sets = ["updated_at = $2"];
    for (const [k, v] of Object.entries(patch)) {
      if (!JOB_COLUMNS.has(k) || k === "updated_at") continue;
      args.push(v ?? null);
      sets.push(`${k} = $${args.length}`);
    }
    await this.db.rows(`UPDATE vendor_jobs SET ${sets.join(", ")} WHERE id = $1`, args);
  }

  async jobCounts(): Promise<Record<VendorJobState, number>> {
    const out = Object.fromEntries(VENDOR_JOB_STATES.map((s) => [s, 0])) as Record<VendorJobState, number>;
    for (const r of await this.db.rows<{ state: VendorJobState; n: number }>(`SELECT state, count(*)::int AS n FROM vendor_jobs GROUP BY state`)) out[r.state] = r.n;
    return out;
  }

  async recordOutcomes(batchId: string, first: number, last: number, outcomes: LineOutcome[], now: number): Promise<number> {
    return this.db.tx((c) => record(c, batchId, first, last, outcomes, now));
  }

  async unfinishedLines(batchId: string, first: number, last: number, limit: number): Promise<number[]> {
    return (
      await this.db.rows<{ line: number }>(
        `SELECT line FROM request_items WHERE batch_id = $1 AND line BETWEEN $2 AND $3 AND state IN ('queued', 'in_flight') ORDER BY line LIMIT $4`,
        [batchId, first, last, limit],
      )
    ).map((r) => r.line);
  }

  async settleRange(batchId: string, first: number, last: number, outcome: ItemOutcome, now: number): Promise<number> {
    return this.db.tx((c) => settleLines(c, batchId, first, last, outcome, now));
  }
}

/** Writes outcomes of unfinished items in `first..last` with their counter deltas (and native token totals), in one statement. */
async function record(q: Queryable, batchId: string, first: number, last: number, outcomes: LineOutcome[], now: number): Promise<number> {
  if (outcomes.length === 0) return 0;
  const [row] = (
    await q.query<{ n: number }>(
      `WITH v AS (SELECT * FROM ${outcomesFrom("$4")}),
       done AS (
         UPDATE request_items r
            SET ${setOutcome("$5")}
           FROM v
          WHERE r.batch_id = $1 AND r.line = v.line AND r.line BETWEEN $2 AND $3 AND r.state IN ('queued', 'in_flight')
         RETURNING r.state, r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens),
       d AS (
         SELECT count(*)::int AS n,
                count(*) FILTER (WHERE state = 'succeeded') AS succeeded, count(*) FILTER (WHERE state = 'failed') AS failed,
                count(*) FILTER (WHERE state = 'expired') AS expired, count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(cached_tokens), 0) AS cached_tokens,
                coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens
           FROM done),
       counted AS (
         UPDATE batch_counts c
            SET ${ADD_COUNTS}
           FROM d WHERE c.batch_id = $1 AND d.n > 0),
       native AS (
         UPDATE native_runs nr SET input_tokens = nr.input_tokens + d.input_tokens, output_tokens = nr.output_tokens + d.output_tokens
           FROM d WHERE nr.batch_id = $1 AND d.input_tokens + d.output_tokens > 0)
       SELECT n FROM d`,
      [batchId, first, last, JSON.stringify(outcomes.map((o) => outcomeRow({ batch_id: batchId, line: o.line, lease_owner: null, outcome: o.outcome }))), now],
    )
  ).rows;
  return row!.n;
}
