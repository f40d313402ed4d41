import type { Log } from "./log.js";
import type { OutcomeRecord, Store } from "../store/store.js";

/**
 * Group commit of item outcomes: calls buffer their outcomes with `record` and one transaction writes every buffered
 * outcome. A commit happens after `groupCommitMs` (default 5 ms), or sooner when every call in flight is waiting for
 * it, or 1024 outcomes are buffered.
 */
export class OutcomeRecorder {
  /** Outcomes waiting for the next group commit, one list per call that waits for them (a coalesced call has many). */
  private pending: OutcomeRecord[][] = [];
  /** Outcomes in `pending`. */
  private pendingRecords = 0;
  /**
   * Ends when the commit that will hold `pending` has ended, and what every `record` of the group returns: one promise
   * per group, not one per call.
   */
  private committed: Promise<void> | null = null;
  private endCommitted: (() => void) | null = null;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Log,
    /** Longest wait, ms, before buffered outcomes are written. */
    private readonly groupCommitMs: number | undefined,
    /** Upstream calls in flight now, across providers (each one may be waiting for a commit). */
    private readonly callsInFlight: () => number,
    /** Told after a commit was written (a batch whose last outcomes just landed can be finalized at once). */
    private readonly onWritten: () => void,
  ) {}

  /**
   * Buffers one call's outcomes (one, or a coalesced group's) for the next group commit.
   * @returns once the commit that holds them has ended (written or failed).
   */
  record(r: OutcomeRecord | OutcomeRecord[]): Promise<void> {
    const records = Array.isArray(r) ? r : [r];
    this.committed ??= new Promise((end) => (this.endCommitted = end));
    const committed = this.committed;
    this.pending.push(records);
    this.pendingRecords += records.length;
    // Every call in flight waiting for the commit: waiting longer groups nothing more.
    const calls = this.callsInFlight();
    if (this.pendingRecords >= 1024 || this.pending.length >= calls) void this.flush();
    else if (this.pending.length === 1) setTimeout(() => void this.flush(), this.groupCommitMs ?? 5);
    return committed;
  }

  /** Writes buffered outcomes in one transaction (group commit). A failed write is logged, never thrown. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.length === 0) return;
    const group = this.pending;
    const end = this.endCommitted!;
    this.pending = [];
    this.pendingRecords = 0;
    this.committed = null;
    this.endCommitted = null;
    this.flushing = this.store
      .recordOutcomes(group.length === 1 ? group[0]! : group.flat(), Date.now())
      .then(() => this.onWritten())
      .catch((err) => this.log.error({ err }, "recording outcomes failed; their leases will return them to the queue"))
      .finally(() => {
        this.flushing = null;
        end();
      });
    await this.flushing;
  }
}
