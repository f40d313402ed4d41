import type { Batch, BatchStatus, BatchUsage, ItemOutcome, ItemState, RequestCounts, RequestItem } from "../core/batch.js";
import type { ParsedRequestLine } from "../core/request-line.js";
import type { WebhookOutbox } from "./webhook-outbox.js";
import type { VendorJobStore } from "./vendor-jobs.js";

/** Metadata of a stored file (OpenAI FileObject before rendering). Times are unix ms. */
export interface FileRecord {
  id: string;
  owner: string;
  filename: string;
  purpose: string;
  bytes: number;
  created_at: number;
  expires_at: number | null;
}

/** One page of a cursor-paginated listing. */
export interface Page<T> {
  data: T[];
  has_more: boolean;
}

/** Cursor pagination of batches. */
export interface BatchListQuery {
  after?: string;
  before?: string;
  limit: number;
  dialects?: readonly string[];
}

/** A finished item as written to the output or error file. */
export interface FinishedItem {
  id: string;
  line: number;
  custom_id: string;
  state: ItemState;
  status_code: number | null;
  request_id: string | null;
  response_body: string | null;
  error_code: string | null;
  error_message: string | null;
}

/** An outcome to record for an item this worker holds the lease of. */
export interface OutcomeRecord {
  batch_id: string;
  line: number;
  lease_owner: string;
  outcome: ItemOutcome;
}

/**
 * Everything the engine persists. All SQL lives behind this interface (store/sqlite, later store/postgres);
 * every method that changes state is one transaction. Times are unix ms.
 */
export interface Store {
  insertFile(file: FileRecord): Promise<void>;
  getFile(id: string): Promise<FileRecord | null>;
  /**
   * Files of `owner` ("" = all when auth is off is the caller's choice), optionally of one purpose, after cursor
   * `after`; with `liveAt` (unix ms) only those whose `expires_at` is null or later.
   */
  listFiles(q: { owner: string | null; purpose?: string; order: "asc" | "desc"; after?: string; limit: number; liveAt?: number }): Promise<Page<FileRecord>>;
  deleteFile(id: string): Promise<boolean>;
  /** Up to `limit` files whose `expires_at` is at or before `now` (unix ms), soonest expired first (the retention sweep). */
  expiredFiles(now: number, limit: number): Promise<FileRecord[]>;

  /** Inserts a batch; `providerKey` is the sealed (encrypted) per-batch upstream key, if any. */
  insertBatch(batch: Batch, providerKey: string | null): Promise<void>;
  getBatch(id: string): Promise<Batch | null>;
  /**
   * Newest first; `owner` null lists all; `dialects` keeps only batches created through those APIs. `after` pages to
   * older batches than that id, `before` to newer ones (the page is still newest first).
   */
  listBatches(q: BatchListQuery & { owner: string | null }): Promise<Page<Batch>>;
  /** Batches in any of `statuses`, oldest first. */
  batchesInStatus(statuses: readonly BatchStatus[]): Promise<Batch[]>;
  /**
   * Compare-and-set update: applies `patch` only while the batch is in one of `from`. A patch that ends the batch
   * (a terminal `status` reached from a non-terminal one) also queues its webhook event in `webhookOutbox`, in the
   * same transaction.
   * @returns true when applied. @throws Error when `patch.status` is not a legal transition from every `from`
   * (core/batch.ts): a programming error, never the caller's.
   */
  updateBatch(id: string, from: readonly BatchStatus[], patch: Partial<Batch>): Promise<boolean>;
  /** The sealed upstream key of a batch (gateway mode); null when it had none or once it was erased. */
  getProviderKey(batchId: string): Promise<string | null>;
  /** Erases the stored upstream key of a batch (called when the batch ends); `hadProviderKey` still tells it had one. */
  clearProviderKey(batchId: string): Promise<void>;
  /** Whether the batch was created with an upstream key of the caller's (gateway mode), erased since or not. */
  hadProviderKey(batchId: string): Promise<boolean>;

  /**
   * Inserts validated lines as queued items, in one transaction: all or none.
   * @throws OpenBatchError 400 (code duplicate_custom_id) when a custom_id is already in the batch.
   */
  insertItems(batchId: string, lines: ParsedRequestLine[]): Promise<void>;
  /** Removes every item of a batch (a failed validation, or a validation restarted after a crash). */
  deleteItems(batchId: string): Promise<void>;
  /**
   * Leases up to `limit` queued items of a batch whose `next_attempt_at <= now`, lowest line first, and counts the
   * attempt. @returns the claimed items.
   */
  claimItems(batchId: string, leaseOwner: string, limit: number, now: number, leaseUntil: number): Promise<RequestItem[]>;
  /** Returns a leased item to the queue for another attempt at `nextAttemptAt`. @returns false if the lease was lost. */
  requeueItem(batchId: string, line: number, leaseOwner: string, nextAttemptAt: number): Promise<boolean>;
  /** Records outcomes in one transaction; an item whose lease this owner no longer holds is skipped. @returns rows written. */
  recordOutcomes(records: OutcomeRecord[], now: number): Promise<number>;
  /** Ends every queued or in-flight item of a batch with `outcome` (expiry, cancellation). @returns rows written. */
  settleUnfinished(batchId: string, outcome: ItemOutcome, now: number): Promise<number>;
  /** Returns to the queue the in-flight items of a batch whose lease ended before `now` (all of them when `now` is Infinity). */
  releaseLeases(batchId: string, now: number): Promise<number>;
  /** Live counts and summed usage of a batch. */
  countItems(batchId: string): Promise<{ counts: RequestCounts; usage: BatchUsage }>;
  /** Item counts over every batch (for metrics): `pending` = queued + in flight. */
  itemTotals(): Promise<RequestCounts>;
  /**
   * Items with line > `afterLine` in line order (only those in `states`, when given), for output files and listings.
   * With `maxBytes`, the page also stops before the item that would bring the summed bytes of its `response_body` and
   * `error_message` past it, so a page's memory is bounded whatever the items hold; it still holds at least one item.
   */
  pageItems(batchId: string, afterLine: number, limit: number, states?: readonly ItemState[], maxBytes?: number): Promise<FinishedItem[]>;
  /** True when the batch has an item with line > `afterLine` (in `states`, when given): a listing's `has_more`. */
  hasItemsAfter(batchId: string, afterLine: number, states?: readonly ItemState[]): Promise<boolean>;
  /**
   * Counts one more attempt to finalize a batch (write its result files), durably, before the attempt starts: attempts
   * a crash cut short count too. @returns the attempts so far, this one included.
   */
  beginFinalizeAttempt(batchId: string): Promise<number>;
  /** Request bodies of items with line > `afterLine` in `states`, in line order (to re-run them). */
  pageRequests(batchId: string, afterLine: number, limit: number, states: readonly ItemState[]): Promise<{ line: number; custom_id: string; body: string }[]>;
  /** The line of an item given its id (a listing cursor), or null. */
  lineOfItem(batchId: string, itemId: string): Promise<number | null>;
  /** The highest line of a batch (0 when it has none): requests added later continue after it. */
  maxLine(batchId: string): Promise<number>;
  /** Removes a batch with its items and counters. */
  deleteBatch(batchId: string): Promise<void>;
  /** True while any item of a batch is queued or in flight. */
  hasUnfinished(batchId: string): Promise<boolean>;
  /** Earliest `next_attempt_at` among queued items of a batch (null when none is queued). */
  nextAttemptAt(batchId: string): Promise<number | null>;

  /** Events of batches that ended and their webhook deliveries (engine/webhooks.ts sends them). */
  readonly webhookOutbox: WebhookOutbox;

  /** Native runs and vendor jobs of batches run on a vendor's own batch API (engine/native runs them). */
  readonly vendorJobs: VendorJobStore;

  /**
   * True when many processes use this store at once (PostgreSQL): start-up then must not take back leases or claims
   * (they may be a live process's), and dispatchers leave batches of providers they lack to the workers that have them.
   * Absent or false: one process owns the store (SQLite).
   */
  readonly shared?: boolean;
  /**
   * Registers a dispatching process (its lease owner id) and the providers it has, with a heartbeat: when the heartbeat
   * stops, its leases are returned to the queue at once. Shared stores only.
   */
  registerWorker?(workerId: string, providers: string[]): Promise<void>;
  /** Calls `listener` whenever another process announces work (LISTEN/NOTIFY). Shared stores only. @returns unsubscribe. */
  onWork?(listener: () => void): () => void;
  /**
   * One process at a time per batch (its finalizer): @returns a release function when this process holds the batch's
   * lock now, null while another does. Shared stores only; a lock dies with its process.
   */
  lockBatch?(batchId: string): Promise<(() => Promise<void>) | null>;

  close(): Promise<void>;
}
