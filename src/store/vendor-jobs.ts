import type { ItemOutcome } from "../core/batch.js";
import type { Endpoint } from "../core/wire-format.js";

/**
 * Durable state of batches run on a vendor's own batch API (engine/native). Two tables:
 * - native runs: one row per batch whose mode was decided (or asked for with a header): its mode, and whether the
 *   vendor jobs still hold it (the direct dispatcher leaves a held batch alone);
 * - vendor jobs: one row per chunk of a batch's items handed to the vendor, written BEFORE the vendor call that creates
 *   it (DESIGN.md invariant 3), with the vendor's ids as they become known.
 * Times are unix ms.
 */

/** How a batch runs: we send each request (direct), or vendor jobs on the provider's batch API (native). */
export type RunMode = "direct" | "native";

/** A batch's run: the mode a header asked for, the mode decided, and whether vendor jobs still hold it. */
export interface NativeRun {
  batch_id: string;
  /** What `x-openbatch-batch-mode` asked for at create, or null. */
  requested: RunMode | null;
  /** The mode decided when the batch first ran, or null while undecided. */
  mode: RunMode | null;
  /** True while the vendor jobs own the batch's items; false once released to the dispatcher (done, or fallback). */
  held: boolean;
}

/**
 * Where a vendor job is: `pending` (row written, nothing accepted by the vendor yet, as far as we know), `uploaded`
 * (its input file is at the vendor: `vendor_file_id`), `submitted` (the vendor accepted it: `vendor_id`), `ended` (the
 * vendor says it ended: `vendor_status`, output refs), `recorded` (its results are recorded: final), `abandoned`
 * (never submitted: the batch was cancelled or expired first; final).
 */
export type VendorJobState = "pending" | "uploaded" | "submitted" | "ended" | "recorded" | "abandoned";

/** Every VendorJobState, in lifecycle order (the keys of `countByState`). */
export const VENDOR_JOB_STATES: readonly VendorJobState[] = ["pending", "uploaded", "submitted", "ended", "recorded", "abandoned"];

/** One chunk of a native batch: items `first_line..last_line` (the queued ones among them when it was made). */
export interface VendorJob {
  /** Our id; also the tag the vendor job carries (OpenAI metadata, Gemini displayName) to be found after a crash. */
  id: string;
  batch_id: string;
  /** 0-based chunk number within the batch. */
  chunk: number;
  provider: string;
  /** The adapter: "openai" | "anthropic" | "gemini". */
  vendor: string;
  /** The endpoint its lines target, in the vendor's format (results are translated back from it). */
  endpoint: Endpoint;
  first_line: number;
  last_line: number;
  /** Items sent in it, and their request bytes. */
  requests: number;
  bytes: number;
  state: VendorJobState;
  vendor_file_id: string | null;
  vendor_id: string | null;
  /** The vendor's own status word, as last polled (e.g. "in_progress", "completed", "expired"). */
  vendor_status: string | null;
  /** How it ended: completed | failed | expired | cancelled (null until it has). */
  outcome: "completed" | "failed" | "expired" | "cancelled" | null;
  /** Vendor-specific refs to download results (JSON text: output/error file ids, results URL, …). */
  result_ref: string | null;
  /** The vendor's message when it failed the whole job. */
  failure: string | null;
  /** Set once we asked the vendor to cancel it. */
  cancel_requested: boolean;
  /** Consecutive vendor errors (backoff), and the last one. */
  errors: number;
  last_error: string | null;
  next_attempt_at: number;
  created_at: number;
  updated_at: number;
}

/** An outcome for one item of a vendor job, by line. */
export interface LineOutcome {
  line: number;
  outcome: ItemOutcome;
}

/** The store of native runs and vendor jobs. Every method that writes is one transaction. */
export interface VendorJobStore {
  /** Records the mode a create call asked for (before the batch can run). */
  requestMode(batchId: string, mode: RunMode): Promise<void>;
  /** The run of a batch, or null when none was recorded. */
  getRun(batchId: string): Promise<NativeRun | null>;
  /**
   * Decides a batch's mode once: writes `mode` (held when native) unless a mode is already decided.
   * @returns the run as stored afterwards (the earlier decision when there was one).
   */
  decide(batchId: string, mode: RunMode): Promise<NativeRun>;
  /**
   * Tokens of the results recorded from a batch's vendor jobs (those ran at the vendor's batch price), or null when
   * the batch did not run natively.
   */
  nativeUsage(batchId: string): Promise<{ input_tokens: number; output_tokens: number } | null>;
  /**
   * Stores what the vendor reports of a running job (requests finished so far), or clears it (null: its results are
   * being recorded). Optional: a store without it shows a native batch's counts as its recorded results only.
   */
  setProgress?(jobId: string, batchId: string, counts: { completed: number; failed: number } | null): Promise<void>;
  /** Requests the vendor reports finished in a batch's running jobs, whose results are not recorded yet (see setProgress). */
  progressOf?(batchId: string): Promise<{ completed: number; failed: number }>;
  /** Hands a native batch back to the dispatcher (its vendor work is over, or its leftovers fall back to direct). */
  release(batchId: string): Promise<void>;
  /** Ids of batches whose vendor jobs hold them. */
  heldBatches(): Promise<string[]>;

  /**
   * Inserts a vendor job row and, in the same transaction, ends the items that could not be sent (untranslatable).
   * @throws Error when a job with that (batch, chunk) exists.
   */
  insertJob(job: VendorJob, failures: LineOutcome[]): Promise<void>;
  /** Jobs of a batch in chunk order. */
  jobsOf(batchId: string): Promise<VendorJob[]>;
  /** Every job not in a final state (recorded, abandoned), oldest first. */
  openJobs(): Promise<VendorJob[]>;
  /** The highest line covered by a job of the batch (0 when none). */
  coveredUpTo(batchId: string): Promise<number>;
  /** Applies `patch` to a job. */
  updateJob(id: string, patch: Partial<Omit<VendorJob, "id" | "batch_id" | "chunk">>): Promise<void>;
  /** Job counts by state over all batches (metrics). */
  jobCounts(): Promise<Record<VendorJobState, number>>;

  /**
   * Records outcomes of items of `batchId` between lines `first..last` that have not finished yet (queued or in
   * flight), updating the batch's counters; an item already finished is left as it is, so recording twice (after a
   * crash while recording) writes each item once. @returns rows written.
   */
  recordOutcomes(batchId: string, first: number, last: number, outcomes: LineOutcome[], now: number): Promise<number>;
  /** Lines in `first..last` of a batch still queued or in flight. */
  unfinishedLines(batchId: string, first: number, last: number, limit: number): Promise<number[]>;
  /** Ends every unfinished item in `first..last` with `outcome`. @returns rows written. */
  settleRange(batchId: string, first: number, last: number, outcome: ItemOutcome, now: number): Promise<number>;
}

/** True for a job state no further vendor call changes (recorded, abandoned). */
export function isFinalJobState(state: VendorJobState): boolean {
  return state === "recorded" || state === "abandoned";
}
