import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * Runs SQLite's WAL checkpoints for one database file on a worker thread of its own, so that copying committed pages
 * back into the database file and the two fsyncs each checkpoint costs never hold the server's event loop.
 *
 * Why: better-sqlite3 is synchronous, and with SQLite's default (a checkpoint inside the commit that takes the WAL past
 * 1000 pages) every ~40th commit of a busy batch stalled the loop for the checkpoint's fsyncs. Measured (the store
 * calls of bench/overhead.ts at 20,000 items: ingest, claims and group commits of 42, result pages; 4 runs each
 * alternating, loaded 2-core box, ext4 on a virtual disk): 104 µs/item of store time with checkpoints in the commits,
 * 78 µs/item without any (the work this thread takes over). Through SqliteStore at 50,000 items (8 KiB pages, median
 * of 3 alternating runs): 100 µs/item with checkpoints in the commits, 79 with this thread every 100 ms, 86 every 1 s.
 *
 * The thread opens its own connection and runs `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs`: a passive
 * checkpoint never blocks a writer or a reader, and copies only frames every reader is done with. The owner keeps a
 * higher `wal_autocheckpoint` of its own as a backstop (should this thread die or fall behind, the WAL still gets
 * checkpointed, at the old cost). Crash safety is SQLite's: a checkpoint from any connection is atomic with respect
 * to a kill at any point.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  /**
   * Starts the thread. @param path the database file (already in WAL mode); @param intervalMs pause between
   * checkpoints, ms.
   */
  constructor(path: string, intervalMs: number) {
    const sqlite = createRequire(import.meta.url).resolve("better-sqlite3");
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sqlite, path, intervalMs } });
    // It never keeps a process alive (a CLI exits when its work is done) and a failure is not fatal: the backstop
    // checkpoint of the owner's connection remains.
    this.worker.unref();
    this.worker.on("error", () => {});
    this.exited = new Promise((resolve) => this.worker.once("exit", () => resolve()));
  }

  /** Stops the thread after its current checkpoint and closes its connection. */
  async close(): Promise<void> {
    // Held while it winds down, or a process with nothing else to do would exit before the thread has.
    this.worker.ref();
    this.worker.postMessage("close");
    await this.exited;
  }
}

/** The thread's code (CommonJS, so it runs the same from src/ under tsx and from dist/). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.sqlite);
const db = new Database(workerData.path, { fileMustExist: true });
let timer = null;
const checkpoint = () => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // A busy or missing database: the next round tries again (the owner's backstop covers the meantime).
  }
  timer = setTimeout(checkpoint, workerData.intervalMs);
};
timer = setTimeout(checkpoint, workerData.intervalMs);
parentPort.on("message", (m) => {
  if (m !== "close") return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
`;
