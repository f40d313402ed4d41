import type { BatchStatus } from "../core/batch.js";
import type { Store } from "../store/store.js";
import type { FileService } from "./files.js";
import type { Log } from "./log.js";

/** Retention settings (engine option `retention`). */
export interface RetentionOptions {
  /** Time between sweeps for expired files, ms (default 60,000). */
  sweepMs?: number;
  /** The clock files expire by, unix ms (default Date.now; tests move it forward). */
  now?: () => number;
}

/** Files deleted per store round trip; a sweep repeats rounds until none is left. */
const SWEEP_PAGE = 500;

/** Statuses in which a batch may still read its input file (a restart re-validates one cut short in `validating`). */
const UNENDED: readonly BatchStatus[] = ["created", "validating", "in_progress", "finalizing", "cancelling"];

/**
 * Deletes expired files — row and bytes — on a timer. A file is invisible to callers (404) from its `expires_at`
 * on (FileService.get); the sweep reclaims the space. An expired input file of a batch that has not ended is kept
 * until that batch ends, then swept: a restart may need to read it again.
 */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly sweepMs: number;

  constructor(
    private readonly store: Store,
    private readonly files: FileService,
    private readonly log: Log,
    options: RetentionOptions = {},
  ) {
    this.sweepMs = options.sweepMs ?? 60_000;
  }

  /** Sweeps now and then every `sweepMs`. The timer never keeps the process alive. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the timer and waits for a sweep in progress to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * One sweep: deletes every expired file that no unended batch reads. A failure is logged and retried next sweep.
   * @returns how many files it deleted.
   */
  async sweep(): Promise<number> {
    const keep = new Set<string>();
    for (const batch of await this.store.batchesInStatus(UNENDED)) if (batch.input_file_id) keep.add(batch.input_file_id);
    let total = 0;
    for (;;) {
      const deleted = await this.files.deleteExpired(keep, SWEEP_PAGE);
      total += deleted.length;
      if (deleted.length < SWEEP_PAGE || this.stopped) break;
    }
    if (total > 0) this.log.info({ deleted: total }, "deleted expired files");
    return total;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweep()
        .then(() => undefined)
        .catch((err: unknown) => this.log.error({ err }, "expired-file sweep failed"))
        .finally(() => {
          this.running = null;
          this.schedule(this.sweepMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}
