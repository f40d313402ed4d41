import Database from "better-sqlite3";

/**
 * One SQLite connection as every OpenBatch store opens it (WAL, synchronous NORMAL, 5 s busy timeout), with a cache of
 * prepared statements: preparing costs more than running most of our statements.
 */
export class SqliteConnection {
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  /** @param path database file path (":memory:" for tests). */
  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
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
}
