import Database from "better-sqlite3";
import { WalCheckpointer } from "./wal-checkpointer.js";

/** Pause between the background checkpoints of a file database, ms (see WalCheckpointer). */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * WAL pages past which a commit checkpoints on its own connection, when checkpoints run in the background: a backstop
 * only (the background thread keeps the WAL far below it), and cheap when it does run, since the thread has copied
 * most pages already. SQLite's default is 1000.
 */
const BACKSTOP_CHECKPOINT_PAGES = 10_000;

/**
 * One SQLite connection as every OpenBatch store opens it (WAL, synchronous NORMAL, 5 s busy timeout), with a cache of
 * prepared statements: preparing costs more than running most of our statements.
 */
export class SqliteConnection {
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly checkpointer: WalCheckpointer | null = null;

  /**
   * @param path database file path (":memory:" for tests).
   * @param options.backgroundCheckpoints run WAL checkpoints on a worker thread (WalCheckpointer) instead of inside
   * commits; only for a file database, and for the connection that writes most (the engine store).
   * @param options.pageSize page size, bytes, of a database this connection creates (an existing one keeps its own).
   */
  constructor(path: string, options: { backgroundCheckpoints?: boolean; pageSize?: number } = {}) {
    this.db = new Database(path);
    // Only an empty database takes a page size, and only before it is in WAL mode.
    if (options.pageSize && this.db.pragma("page_count", { simple: true }) === 0) this.db.pragma(`page_size = ${options.pageSize}`);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    if (options.backgroundCheckpoints && !this.db.memory) {
      this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
      this.checkpointer = new WalCheckpointer(path, CHECKPOINT_INTERVAL_MS);
    }
  }

  /** A prepared statement for `text`, prepared once and reused. */
  sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  /** Stops background checkpoints (if any), then closes the connection (SQLite checkpoints what is left). */
  async close(): Promise<void> {
    await this.checkpointer?.close();
    this.db.close();
  }
}
