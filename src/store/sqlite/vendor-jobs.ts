import type { ItemOutcome } from "../../core/batch.js";
import type { LineOutcome, NativeRun, RunMode, VendorJob, VendorJobState, VendorJobStore } from "../vendor-jobs.js";
import { VENDOR_JOB_STATES } from "../vendor-jobs.js";
import type { SqliteConnection } from "./connection.js";
import { outcomeParams, ZERO_DELTA } from "./outcome-params.js";

/**
 * Tables of native runs and vendor jobs (see store/vendor-jobs.ts). `native_runs` holds one row per batch whose mode
 * was asked for or decided; `native_usage` the tokens recorded from its vendor jobs; `vendor_jobs` one row per chunk
 * handed to a vendor's batch API. Appended to schema.ts's SCHEMA and MIGRATIONS. A table added here later needs no
 * migration of its own (SCHEMA's CREATE TABLE IF NOT EXISTS runs on every open); a column added to one does.
 */
export const VENDOR_JOB_TABLES = `
CREATE TABLE IF NOT EXISTS native_runs (
  batch_id   TEXT PRIMARY KEY,
  requested  TEXT,
  mode       TEXT,
  held       INTEGER NOT NULL DEFAULT 0,
  decided_at INTEGER
) WITHOUT ROWID;
-- Tokens of results recorded from a batch's vendor jobs (priced at batch rates; the rest of its usage ran directly).
CREATE TABLE IF NOT EXISTS native_usage (
  batch_id      TEXT PRIMARY KEY,
  input_tokens  INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS native_runs_held ON native_runs(held) WHERE held = 1;
CREATE TABLE IF NOT EXISTS vendor_jobs (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT NOT NULL UNIQUE,
  batch_id         TEXT NOT NULL,
  chunk            INTEGER NOT NULL,
  provider         TEXT NOT NULL,
  vendor           TEXT NOT NULL,
  endpoint         TEXT NOT NULL,
  first_line       INTEGER NOT NULL,
  last_line        INTEGER NOT NULL,
  requests         INTEGER NOT NULL,
  bytes            INTEGER NOT NULL,
  state            TEXT NOT NULL,
  vendor_file_id   TEXT,
  vendor_id        TEXT,
  vendor_status    TEXT,
  outcome          TEXT,
  result_ref       TEXT,
  failure          TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  errors           INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT,
  next_attempt_at  INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  UNIQUE (batch_id, chunk)
);
CREATE INDEX IF NOT EXISTS vendor_jobs_open ON vendor_jobs(state, seq);
-- What the vendor reports of a running job (requests finished so far), until its results are recorded.
CREATE TABLE IF NOT EXISTS vendor_job_progress (
  job_id    TEXT PRIMARY KEY,
  batch_id  TEXT NOT NULL,
  completed INTEGER NOT NULL DEFAULT 0,
  failed    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vendor_job_progress_by_batch ON vendor_job_progress(batch_id);
`;

const TOKEN_COLUMNS = ["input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"] as const;

type Row = Record<string, unknown>;

function toJob(row: Row): VendorJob {
  const j = { ...row } as Record<string, unknown>;
  delete j.seq;
  j.cancel_requested = row.cancel_requested === 1;
  return j as unknown as VendorJob;
}

function toRun(row: Row): NativeRun {
  return { batch_id: row.batch_id as string, requested: (row.requested as RunMode | null) ?? null, mode: (row.mode as RunMode | null) ?? null, held: row.held === 1 };
}

/** The vendor-job store on the SqliteStore's connection; item writes keep `batch_counts` in step, as SqliteStore does. */
export class SqliteVendorJobs implements VendorJobStore {
  constructor(private readonly connection: SqliteConnection) {}

  private sql(text: string) {
    return this.connection.sql(text);
  }

  async requestMode(batchId: string, mode: RunMode): Promise<void> {
    this.sql(`INSERT INTO native_runs (batch_id, requested) VALUES (?, ?) ON CONFLICT (batch_id) DO UPDATE SET requested = excluded.requested`).run(batchId, mode);
  }

  async getRun(batchId: string): Promise<NativeRun | null> {
    const row = this.sql(`SELECT * FROM native_runs WHERE batch_id = ?`).get(batchId) as Row | undefined;
    return row ? toRun(row) : null;
  }

  async decide(batchId: string, mode: RunMode): Promise<NativeRun> {
    const held = mode === "native" ? 1 : 0;
    this.sql(
      `INSERT INTO native_runs (batch_id, mode, held, decided_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (batch_id) DO UPDATE SET mode = excluded.mode, held = excluded.held, decided_at = excluded.decided_at WHERE mode IS NULL`,
    ).run(batchId, mode, held, Date.now());
    return (await this.getRun(batchId))!;
  }

  async nativeUsage(batchId: string): Promise<{ input_tokens: number; output_tokens: number } | null> {
    const row = this.sql(`SELECT input_tokens, output_tokens FROM native_usage WHERE batch_id = ?`).get(batchId) as { input_tokens: number; output_tokens: number } | undefined;
    return row ?? null;
  }

  async setProgress(jobId: string, batchId: string, counts: { completed: number; failed: number } | null): Promise<void> {
    if (counts === null) {
      this.sql(`DELETE FROM vendor_job_progress WHERE job_id = ?`).run(jobId);
      return;
    }
    this.sql(
      `INSERT INTO vendor_job_progress (job_id, batch_id, completed, failed) VALUES (?, ?, ?, ?)
       ON CONFLICT (job_id) DO UPDATE SET completed = excluded.completed, failed = excluded.failed`,
    ).run(jobId, batchId, counts.completed, counts.failed);
  }

  async progressOf(batchId: string): Promise<{ completed: number; failed: number }> {
    return this.sql(`SELECT coalesce(sum(completed), 0) AS completed, coalesce(sum(failed), 0) AS failed FROM vendor_job_progress WHERE batch_id = ?`).get(batchId) as {
      completed: number;
      failed: number;
    };
  }

  async release(batchId: string): Promise<void> {
    this.sql(`UPDATE native_runs SET held = 0 WHERE batch_id = ?`).run(batchId);
  }

  async heldBatches(): Promise<string[]> {
    return (this.sql(`SELECT batch_id FROM native_runs WHERE held = 1`).all() as { batch_id: string }[]).map((r) => r.batch_id);
  }

  async insertJob(job: VendorJob, failures: LineOutcome[]): Promise<void> {
    const row: Row = { ...job, cancel_requested: job.cancel_requested ? 1 : 0 };
    const cols = Object.keys(row);
    this.connection.db.transaction(() => {
      this.sql(`INSERT INTO vendor_jobs (${cols.join(", ")}) VALUES (${cols.map((c) => "@" + c).join(", ")})`).run(row);
      this.record(job.batch_id, job.first_line, job.last_line, failures, Date.now());
    })();
  }

  async jobsOf(batchId: string): Promise<VendorJob[]> {
    return (this.sql(`SELECT * FROM vendor_jobs WHERE batch_id = ? ORDER BY chunk`).all(batchId) as Row[]).map(toJob);
  }

  async openJobs(): Promise<VendorJob[]> {
    return (this.sql(`SELECT * FROM vendor_jobs WHERE state NOT IN ('recorded', 'abandoned') ORDER BY seq`).all() as Row[]).map(toJob);
  }

  async coveredUpTo(batchId: string): Promise<number> {
    return (this.sql(`SELECT coalesce(max(last_line), 0) AS n FROM vendor_jobs WHERE batch_id = ?`).get(batchId) as { n: number }).n;
  }

  async updateJob(id: string, patch: Partial<Omit<VendorJob, "id" | "batch_id" | "chunk">>): Promise<void> {
    const sets: string[] = ["updated_at = ?"];
    const args: unknown[] = [Date.now()];
    for (const [k, v] of Object.entries(patch)) {
      sets.push(`${k} = ?`);
      args.push(typeof v === "boolean" ? (v ? 1 : 0) : v);
    }
    this.sql(`UPDATE vendor_jobs SET ${sets.join(", ")} WHERE id = ?`).run(...args, id);
  }

  async jobCounts(): Promise<Record<VendorJobState, number>> {
    const out = Object.fromEntries(VENDOR_JOB_STATES.map((s) => [s, 0])) as Record<VendorJobState, number>;
    for (const r of this.sql(`SELECT state, count(*) AS n FROM vendor_jobs GROUP BY state`).all() as { state: VendorJobState; n: number }[]) out[r.state] = r.n;
    return out;
  }

  async recordOutcomes(batchId: string, first: number, last: number, outcomes: LineOutcome[], now: number): Promise<number> {
    return this.connection.db.transaction(() => this.record(batchId, first, last, outcomes, now))();
  }

  /** Writes outcomes of unfinished items in the range and their counter deltas; call inside a transaction. */
  private record(batchId: string, first: number, last: number, outcomes: LineOutcome[], now: number): number {
    if (outcomes.length === 0) return 0;
    const update = this.sql(
      `UPDATE request_items
          SET state = @state, status_code = @status_code, request_id = @request_id, response_body = @response_body,
              error_code = @error_code, error_message = @error_message,
              input_tokens = @input_tokens, cached_tokens = @cached_tokens,
              output_tokens = @output_tokens, reasoning_tokens = @reasoning_tokens,
              finished_at = @now, lease_owner = NULL, lease_expires_at = NULL
        WHERE batch_id = @batch_id AND line = @line AND line BETWEEN @first AND @last AND state IN ('queued', 'in_flight')`,
    );
    const delta: Record<string, number> = { ...ZERO_DELTA };
    let written = 0;
    for (const o of outcomes) {
      const p = outcomeParams(o.outcome);
      if (update.run({ ...p, batch_id: batchId, line: o.line, first, last, now }).changes === 0) continue;
      written++;
      delta[o.outcome.state]!++;
      for (const k of TOKEN_COLUMNS) delta[k]! += p[k];
    }
    if (written > 0) {
      this.sql(
        `UPDATE batch_counts
            SET succeeded = succeeded + @succeeded, failed = failed + @failed, expired = expired + @expired,
                cancelled = cancelled + @cancelled, input_tokens = input_tokens + @input_tokens,
                cached_tokens = cached_tokens + @cached_tokens, output_tokens = output_tokens + @output_tokens,
                reasoning_tokens = reasoning_tokens + @reasoning_tokens
          WHERE batch_id = @batch_id`,
      ).run({ ...delta, batch_id: batchId });
      if (delta.input_tokens! + delta.output_tokens! > 0) {
        this.sql(
          `INSERT INTO native_usage (batch_id, input_tokens, output_tokens) VALUES (?, ?, ?)
           ON CONFLICT (batch_id) DO UPDATE SET input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens`,
        ).run(batchId, delta.input_tokens, delta.output_tokens);
      }
    }
    return written;
  }

  async unfinishedLines(batchId: string, first: number, last: number, limit: number): Promise<number[]> {
    return (
      this
        .sql(`SELECT line FROM request_items WHERE batch_id = ? AND line BETWEEN ? AND ? AND state IN ('queued', 'in_flight') ORDER BY line LIMIT ?`)
        .all(batchId, first, last, limit) as { line: number }[]
    ).map((r) => r.line);
  }

  async settleRange(batchId: string, first: number, last: number, outcome: ItemOutcome, now: number): Promise<number> {
    return this.connection.db.transaction(() => {
      const changed = this
        .sql(
          `UPDATE request_items
              SET state = @state, status_code = @status_code, request_id = @request_id, response_body = @response_body,
                  error_code = @error_code, error_message = @error_message, finished_at = @now,
                  lease_owner = NULL, lease_expires_at = NULL
            WHERE batch_id = @batch_id AND line BETWEEN @first AND @last AND state IN ('queued', 'in_flight')`,
        )
        .run({ ...outcomeParams(outcome), batch_id: batchId, first, last, now }).changes;
      const column = outcome.state;
      this.sql(`UPDATE batch_counts SET ${column} = ${column} + ? WHERE batch_id = ?`).run(changed, batchId);
      return changed;
    })();
  }
}

