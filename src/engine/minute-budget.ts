/** Window every per-minute budget is enforced over, ms. */
const MINUTE_MS = 60_000;
/**
 * Pacing tolerance, ms: how far a send may run ahead of the even schedule, and how much time lost to late timers may
 * be made up. Kept small: vendors enforce per-minute limits over ~1 s windows, and a burst after a pause draws 429s.
 */
const PACING_TOLERANCE_MS = 10;

/**
 * A per-minute budget (requests or tokens) that is never exceeded over any sliding 60 s window, and is spent evenly:
 * sends are paced at `perMinute / 60 s` (GCRA, 10 ms tolerance) so an upstream that enforces its limit over shorter
 * windows (as vendors do) sees a steady rate rather than a burst.
 */
export class MinuteBudget {
  private readonly log: { at: number; amount: number }[] = [];
  private head = 0;
  private spent = 0;
  /** Theoretical arrival time of the next unit (GCRA), ms. */
  private tat = 0;

  /** @param perMinute units per minute (> 0). */
  constructor(public perMinute: number) {}

  /**
   * @param amount units the send will spend (capped at the whole budget, so an oversized item still goes alone).
   * @returns ms to wait before `amount` may be spent at `now` (0 = now).
   */
  waitMs(amount: number, now: number): number {
    this.prune(now);
    const need = Math.min(amount, this.perMinute);
    let wait = Math.max(0, this.tat - PACING_TOLERANCE_MS - now);
    if (this.spent + need > this.perMinute) {
      // Wait until enough of the oldest spending leaves the window.
      let freed = 0;
      for (let i = this.head; i < this.log.length; i++) {
        freed += this.log[i]!.amount;
        if (this.spent - freed + need <= this.perMinute) {
          wait = Math.max(wait, this.log[i]!.at + MINUTE_MS - now);
          break;
        }
      }
    }
    return wait;
  }

  /** Records spending `amount` at `now`. Call only after `waitMs` returned 0. */
  spend(amount: number, now: number): void {
    const need = Math.min(amount, this.perMinute);
    this.log.push({ at: now, amount: need });
    this.spent += need;
    // After idle time the schedule restarts from now (no catch-up credit), less the tolerance for a late timer.
    this.tat = Math.max(this.tat, now - PACING_TOLERANCE_MS) + (need * MINUTE_MS) / this.perMinute;
  }

  private prune(now: number): void {
    while (this.head < this.log.length && this.log[this.head]!.at <= now - MINUTE_MS) {
      this.spent -= this.log[this.head]!.amount;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.log.length) {
      this.log.splice(0, this.head);
      this.head = 0;
    }
  }
}
