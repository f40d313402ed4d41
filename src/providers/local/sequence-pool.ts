import type { LlamaContextSequence } from "node-llama-cpp";

/**
 * The context's sequences, lent to one request at a time (continuous batching: the lent sequences decode together).
 * A request takes a free sequence, or waits in line (first come, first served) until one is given back; a waiter whose
 * signal aborts leaves the line.
 */
export class SequencePool {
  private readonly free: LlamaContextSequence[] = [];
  private readonly waiters: { grant: (seq: LlamaContextSequence) => void; fail: (err: unknown) => void }[] = [];

  /** Adds a sequence to lend (it goes to the first waiter, if any). */
  add(seq: LlamaContextSequence): void {
    this.release(seq);
  }

  /**
   * A free sequence, waiting for one when all are lent.
   * @throws the signal's reason when it aborts first; the error given to `close` when the pool closes first.
   */
  acquire(signal: AbortSignal): Promise<LlamaContextSequence> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const seq = this.free.pop();
    if (seq) return Promise.resolve(seq);
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: (s: LlamaContextSequence) => {
          signal.removeEventListener("abort", onAbort);
          resolve(s);
        },
        fail: (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Gives a lent sequence back: to the first waiter, else to the free list. */
  release(seq: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next) next.grant(seq);
    else this.free.push(seq);
  }

  /** Lends a sequence to `work` (waiting for one when all are lent) and takes it back after, however `work` ends. */
  async with<T>(signal: AbortSignal, work: (seq: LlamaContextSequence) => Promise<T>): Promise<T> {
    const seq = await this.acquire(signal);
    try {
      return await work(seq);
    } finally {
      this.release(seq);
    }
  }

  /** Fails every waiter with `err` and forgets the free sequences (the context is being disposed). */
  close(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.fail(err);
    this.free.length = 0;
  }
}
