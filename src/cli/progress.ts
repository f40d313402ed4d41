import cliProgress from "cli-progress";

/** One reading of a batch's progress. */
export interface ProgressReading {
  status: string;
  total: number;
  /** Items finished (succeeded + failed + expired + cancelled). */
  done: number;
  failed: number;
}

/**
 * A progress bar on stderr with rate (items/s since the bar started) and ETA; or, when stderr is not a terminal,
 * one line per status change and every 10 % so logs stay readable.
 */
export class BatchProgress {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly started = Date.now();
  private firstDone = -1;
  private lastLine = "";

  constructor(tty = process.stderr.isTTY === true) {
    this.bar = tty
      ? new cliProgress.SingleBar(
          { format: "{bar} {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted} | failed {failed} | {status}", stream: process.stderr, hideCursor: true, etaBuffer: 50 },
          cliProgress.Presets.shades_classic,
        )
      : null;
  }

  update(r: ProgressReading): void {
    if (this.firstDone < 0) this.firstDone = r.done;
    const rate = ((r.done - this.firstDone) / Math.max(0.001, (Date.now() - this.started) / 1000)).toFixed(1);
    if (this.bar) {
      if (this.bar.getTotal() !== r.total) this.bar.start(r.total, r.done, { rate, failed: r.failed, status: r.status });
      this.bar.update(r.done, { rate, failed: r.failed, status: r.status });
      return;
    }
    const tenth = r.total ? Math.floor((10 * r.done) / r.total) : 0;
    const line = `${r.status} ${tenth * 10}%`;
    if (line !== this.lastLine) {
      this.lastLine = line;
      process.stderr.write(`${r.status}: ${r.done}/${r.total} done, ${r.failed} failed, ${rate}/s\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}
