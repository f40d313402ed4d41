import type Database from "better-sqlite3";
import { SqliteConnection } from "./connection.js";
import { COLUMNS, namedKeys, type Row, toBlob, toNamed, toObject } from "../collection-rows.js";
import type { CollectionStore, ObjectWrite, ObjectWriteResult, StoredClass, StoredObject, StoredReference } from "../collection-store.js";

/**
 * Tables of the collections as first released (version 0); they live beside the engine's in the same database file,
 * whose `PRAGMA user_version` is the engine's. The collections count their own changes in `collection_meta`.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS collection_classes (
  name       TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  version    INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS collection_objects (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  class      TEXT NOT NULL,
  id         TEXT NOT NULL,
  properties TEXT NOT NULL,
  vector     BLOB,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (class, id)
);
CREATE INDEX IF NOT EXISTS collection_objects_by_class ON collection_objects(class, seq);
CREATE INDEX IF NOT EXISTS collection_objects_by_id ON collection_objects(id);

CREATE TABLE IF NOT EXISTS collection_references (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  from_class TEXT NOT NULL,
  from_id    TEXT NOT NULL,
  property   TEXT NOT NULL,
  to_class   TEXT NOT NULL,
  to_id      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS collection_references_from ON collection_references(from_class, from_id);
`;

/**
 * Changes to the collections' tables made since version 0, in order; `collection_meta.schema_version` counts those
 * applied. Append only: a released step never changes.
 */
const MIGRATIONS: string[] = [
  // 1: the owner of each class (owner fingerprint of the API key that created it; NULL: created with auth off).
  `ALTER TABLE collection_classes ADD COLUMN owner TEXT`,
  // 2: named vectors other than `default` (JSON: name → base64 of little-endian float32).
  `ALTER TABLE collection_objects ADD COLUMN vectors TEXT`,
];

/**
 * Collections in SQLite. It opens its own connection to a database file (the engine's `openbatch.db`: better-sqlite3
 * is synchronous, so the two connections of one process never hold a transaction at the same time).
 */
export class SqliteCollectionStore implements CollectionStore {
  private readonly db: Database.Database;
  private readonly sql: (text: string) => Database.Statement;

  /** @param path database file path (":memory:" for tests). */
  constructor(path: string) {
    const connection = new SqliteConnection(path);
    this.db = connection.db;
    this.sql = (text) => connection.sql(text);
    this.migrate();
  }

  /** Creates the tables, then applies the migrations not yet applied, in one immediate transaction (so two processes opening the file at once do not both apply one). */
  private migrate(): void {
    this.db
      .transaction(() => {
        this.db.exec(SCHEMA);
        this.db.exec(`CREATE TABLE IF NOT EXISTS collection_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`);
        const row = this.db.prepare(`SELECT value FROM collection_meta WHERE key = 'schema_version'`).get() as { value: number } | undefined;
        const applied = row?.value ?? 0;
        if (applied > MIGRATIONS.length) throw new Error(`The collections in this database are at schema version ${applied}, newer than this OpenBatch knows (${MIGRATIONS.length}): upgrade OpenBatch.`);
        for (const step of MIGRATIONS.slice(applied)) this.db.exec(step);
        this.db.prepare(`INSERT INTO collection_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(MIGRATIONS.length);
      })
      .immediate();
  }

  async listClasses(): Promise<StoredClass[]> {
    const rows = this.sql(`SELECT * FROM collection_classes ORDER BY created_at, name`).all() as Row[];
    return rows.map((r) => ({
      name: r.name as string,
      definition: JSON.parse(r.definition as string),
      owner: (r.owner as string | null) ?? null,
      version: r.version as number,
      created_at: r.created_at as number,
    }));
  }

  async putClass(name: string, definition: unknown, owner: string | null): Promise<void> {
    // The owner is the creator's; a replaced definition keeps it.
    this.sql(
      `INSERT INTO collection_classes (name, definition, owner, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET definition = excluded.definition`,
    ).run(name, JSON.stringify(definition), owner, Date.now());
  }

  async deleteClass(name: string): Promise<void> {
    this.db.transaction(() => {
      this.sql(`DELETE FROM collection_references WHERE from_class = ?`).run(name);
      this.sql(`DELETE FROM collection_objects WHERE class = ?`).run(name);
      this.sql(`DELETE FROM collection_classes WHERE name = ?`).run(name);
    })();
  }

  async upsertObjects(writes: ObjectWrite[], now: number): Promise<ObjectWriteResult[]> {
    return this.db.transaction(() => {
      const results: ObjectWriteResult[] = [];
      const classes = new Set<string>();
      for (const w of writes) {
        classes.add(w.class);
        const before = this.sql(`SELECT seq, vector IS NOT NULL AS has_vector, vectors FROM collection_objects WHERE class = ? AND id = ?`).get(w.class, w.id) as
          | { seq: number; has_vector: number; vectors: string | null }
          | undefined;
        const row = this.sql(
          `INSERT INTO collection_objects (class, id, properties, vector, vectors, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(class, id) DO UPDATE SET properties = excluded.properties, vector = excluded.vector, vectors = excluded.vectors, updated_at = excluded.updated_at
           RETURNING seq, created_at, updated_at`,
        ).get(w.class, w.id, JSON.stringify(w.properties), toBlob(w.vector), toNamed(w.vectors), now, now) as { seq: number; created_at: number; updated_at: number };
        if (before) this.sql(`DELETE FROM collection_references WHERE from_class = ? AND from_id = ?`).run(w.class, w.id);
        for (const r of w.references) {
          this.sql(`INSERT INTO collection_references (from_class, from_id, property, to_class, to_id) VALUES (?, ?, ?, ?, ?)`).run(w.class, w.id, r.property, r.to_class, r.to_id);
        }
        results.push({ ...row, created: !before, hadVector: before?.has_vector === 1, hadVectors: namedKeys(before?.vectors) });
      }
      for (const c of classes) this.sql(`UPDATE collection_classes SET version = version + 1 WHERE name = ?`).run(c);
      return results;
    })();
  }

  async getObject(cls: string, id: string, withVector: boolean): Promise<StoredObject | null> {
    const row = this.sql(`SELECT ${COLUMNS(withVector)} FROM collection_objects WHERE class = ? AND id = ?`).get(cls, id) as Row | undefined;
    return row ? toObject(row) : null;
  }

  async classesOfObject(id: string): Promise<string[]> {
    return (this.sql(`SELECT class FROM collection_objects WHERE id = ? ORDER BY seq`).all(id) as { class: string }[]).map((r) => r.class);
  }

  async objectsBySeq(cls: string, seqs: readonly number[], withVectors: boolean): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    // Chunks of at most 100, so at most 100 distinct statements are cached (one per chunk length).
    for (let i = 0; i < seqs.length; i += 100) {
      const chunk = seqs.slice(i, i + 100);
      // `+class`: seq is the rowid, so each row is one primary-key lookup; without the `+` SQLite searched the
      // (class, seq) index first and then the table (42 → 28 µs for 10 rows, 50,000 objects in memory).
      const rows = this.sql(`SELECT ${COLUMNS(withVectors)} FROM collection_objects WHERE +class = ? AND seq IN (${chunk.map(() => "?").join(", ")})`).all(cls, ...chunk) as Row[];
      out.push(...rows.map(toObject));
    }
    return out;
  }

  async scanObjects(cls: string, afterSeq: number, limit: number, withVectors: boolean): Promise<StoredObject[]> {
    const rows = this.sql(`SELECT ${COLUMNS(withVectors)} FROM collection_objects WHERE class = ? AND seq > ? ORDER BY seq LIMIT ?`).all(cls, afterSeq, limit) as Row[];
    return rows.map(toObject);
  }

  async countObjects(): Promise<Map<string, number>> {
    const rows = this.sql(`SELECT class, count(*) AS n FROM collection_objects GROUP BY class`).all() as { class: string; n: number }[];
    return new Map(rows.map((r) => [r.class, r.n]));
  }

  async countVectors(cls: string, name?: string): Promise<number> {
    if (name === undefined || name === "default") return (this.sql(`SELECT count(*) AS n FROM collection_objects WHERE class = ? AND vector IS NOT NULL`).get(cls) as { n: number }).n;
    const path = `$.${JSON.stringify(name)}`;
    return (this.sql(`SELECT count(*) AS n FROM collection_objects WHERE class = ? AND json_extract(vectors, ?) IS NOT NULL`).get(cls, path) as { n: number }).n;
  }

  async deleteObjects(cls: string, ids: readonly string[]): Promise<{ deleted: string[]; vectorSeqs: number[]; namedSeqs: Record<string, number[]> }> {
    return this.db.transaction(() => {
      const vectorSeqs: number[] = [];
      const namedSeqs: Record<string, number[]> = {};
      const deleted: string[] = [];
      for (const id of ids) {
        const row = this.sql(`DELETE FROM collection_objects WHERE class = ? AND id = ? RETURNING seq, vector IS NOT NULL AS has_vector, vectors`).get(cls, id) as
          | { seq: number; has_vector: number; vectors: string | null }
          | undefined;
        if (!row) continue;
        deleted.push(id);
        if (row.has_vector) vectorSeqs.push(row.seq);
        for (const name of namedKeys(row.vectors)) (namedSeqs[name] ??= []).push(row.seq);
        this.sql(`DELETE FROM collection_references WHERE from_class = ? AND from_id = ?`).run(cls, id);
      }
      if (deleted.length) this.sql(`UPDATE collection_classes SET version = version + 1 WHERE name = ?`).run(cls);
      return { deleted, vectorSeqs, namedSeqs };
    })();
  }

  async addReferences(refs: readonly StoredReference[]): Promise<void> {
    this.db.transaction(() => {
      for (const r of refs) {
        this.sql(`INSERT INTO collection_references (from_class, from_id, property, to_class, to_id) VALUES (?, ?, ?, ?, ?)`).run(r.from_class, r.from_id, r.property, r.to_class, r.to_id);
      }
    })();
  }

  async deleteReferences(cls: string, id: string, property: string, to: { to_class: string; to_id: string } | null): Promise<number> {
    const r = to
      ? this.sql(`DELETE FROM collection_references WHERE from_class = ? AND from_id = ? AND property = ? AND to_class = ? AND to_id = ?`).run(cls, id, property, to.to_class, to.to_id)
      : this.sql(`DELETE FROM collection_references WHERE from_class = ? AND from_id = ? AND property = ?`).run(cls, id, property);
    return r.changes;
  }

  async referencesFrom(cls: string, ids: readonly string[]): Promise<StoredReference[]> {
    const out: StoredReference[] = [];
    for (let i = 0; i < ids.length; i += 100) {
      const chunk = ids.slice(i, i + 100);
      const rows = this.sql(
        `SELECT from_class, from_id, property, to_class, to_id FROM collection_references
         WHERE from_class = ? AND from_id IN (${chunk.map(() => "?").join(", ")}) ORDER BY seq`,
      ).all(cls, ...chunk) as StoredReference[];
      out.push(...rows);
    }
    return out;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
