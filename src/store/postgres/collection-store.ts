import type pg from "pg";
import type {
  ClassChanges,
  ClassVersion,
  CollectionChangeFeed,
  CollectionStore,
  ObjectWrite,
  ObjectWriteResult,
  StoredClass,
  StoredObject,
  StoredReference,
} from "../collection-store.js";
import { notFound } from "../../core/errors.js";
import { mergeClassDefinition } from "./class-merge.js";
import { PgDatabase } from "./db.js";
import { COLUMNS, namedKeys, type Row, toBlob, toNamed, toObject } from "../collection-rows.js";

/**
 * The collections' tables in PostgreSQL, as numbered steps of their own (`collection_schema` records how many ran), so
 * they migrate independently of the engine's tables (schema.ts). Columns follow the SQLite store
 * (store/sqlite/collection-store.ts); what only a shared store needs:
 * - `collection_version_seq`: one database-wide sequence every write takes its version from, after locking the class
 *   row, so within a class versions grow in commit order and a version names one transaction;
 * - `collection_objects.change_version`: the version of the write that last touched the object;
 * - `collection_classes.def_version`: the version of the last definition change (0: as created);
 * - `collection_tombstones`: the seqs deleted, with the delete's version, so other processes drop them from their
 *   indexes; kept TOMBSTONE_TTL_MS, after which `collection_classes.pruned_version` says which are gone.
 * Properties and named vectors stay TEXT (JSON): JSONB would reorder the keys of a property object.
 */
const COLLECTION_MIGRATIONS: string[] = [
  `
CREATE SEQUENCE collection_version_seq;
CREATE TABLE collection_classes (
  name           TEXT PRIMARY KEY,
  definition     TEXT NOT NULL,
  owner          TEXT,
  version        BIGINT NOT NULL DEFAULT 0,
  pruned_version BIGINT NOT NULL DEFAULT 0,
  def_version    BIGINT NOT NULL DEFAULT 0,
  created_at     BIGINT NOT NULL
);
CREATE TABLE collection_objects (
  seq            BIGSERIAL PRIMARY KEY,
  class          TEXT NOT NULL,
  id             TEXT NOT NULL,
  properties     TEXT NOT NULL,
  vector         BYTEA,
  vectors        TEXT,
  change_version BIGINT NOT NULL,
  created_at     BIGINT NOT NULL,
  updated_at     BIGINT NOT NULL,
  UNIQUE (class, id)
);
CREATE INDEX collection_objects_by_class ON collection_objects(class, seq);
CREATE INDEX collection_objects_by_id ON collection_objects(id);
CREATE INDEX collection_objects_by_change ON collection_objects(class, change_version, seq);
CREATE TABLE collection_references (
  seq        BIGSERIAL PRIMARY KEY,
  from_class TEXT NOT NULL,
  from_id    TEXT NOT NULL,
  property   TEXT NOT NULL,
  to_class   TEXT NOT NULL,
  to_id      TEXT NOT NULL
);
CREATE INDEX collection_references_from ON collection_references(from_class, from_id);
CREATE TABLE collection_tombstones (
  class      TEXT NOT NULL,
  seq        BIGINT NOT NULL,
  version    BIGINT NOT NULL,
  deleted_at BIGINT NOT NULL
);
CREATE INDEX collection_tombstones_by_class ON collection_tombstones(class, version);
`,
];

/** Advisory lock key of the collections' migration (one migrating process at a time per database). */
const MIGRATION_LOCK = 0x0b_c011;
/**
 * How long a delete's tombstone is kept, ms. Every API server catches up at least every second while it runs
 * (collections/store-sync.ts); one that fell further behind rebuilds its index from the store.
 */
const TOMBSTONE_TTL_MS = 10 * 60 * 1000;

/**
 * Collections in PostgreSQL, shared by every API server of one database. Besides the CollectionStore contract it is a
 * CollectionChangeFeed: each write takes a version from one sequence while it holds its class rows' locks, stamps the
 * objects it writes (and the tombstones of those it deletes) with it, and remembers it as its own, so
 * `changesSince` hands a process only what the others wrote.
 */
export class PgCollectionStore implements CollectionStore, CollectionChangeFeed {
  readonly changes: CollectionChangeFeed = this;
  /** Versions this process wrote, per class, not yet forgotten (forgetOwn). */
  private readonly own = new Map<string, Set<number>>();

  private constructor(private readonly db: PgDatabase) {}

  /**
   * Connects (a pool of its own, at most `maxConnections`) and creates or migrates the collections' tables.
   * @throws Error when PostgreSQL cannot be reached or the tables are at a newer version than this code knows.
   */
  static async open(url: string, maxConnections = 5): Promise<PgCollectionStore> {
    const db = new PgDatabase(url, maxConnections);
    try {
      await db.tx(async (c) => {
        await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
        await c.query("CREATE TABLE IF NOT EXISTS collection_schema (version INTEGER NOT NULL)");
        const rows = (await c.query<{ version: number }>("SELECT version FROM collection_schema")).rows;
        let applied = rows[0]?.version ?? 0;
        if (applied > COLLECTION_MIGRATIONS.length) throw new Error(`The collections in this database are at schema version ${applied}, newer than this OpenBatch knows (${COLLECTION_MIGRATIONS.length}): upgrade OpenBatch.`);
        if (rows.length === 0) await c.query("INSERT INTO collection_schema (version) VALUES (0)");
        for (; applied < COLLECTION_MIGRATIONS.length; applied++) {
          await c.query(COLLECTION_MIGRATIONS[applied]!);
          await c.query("UPDATE collection_schema SET version = $1", [applied + 1]);
        }
      });
    } catch (err) {
      await db.close();
      throw err;
    }
    return new PgCollectionStore(db);
  }

  private remember(cls: string, version: number): void {
    let set = this.own.get(cls);
    if (!set) this.own.set(cls, (set = new Set()));
    set.add(version);
  }

  private ownOf(cls: string): number[] {
    return [...(this.own.get(cls) ?? [])];
  }

  /**
   * Locks the class rows (in name order, so two writers never deadlock) and takes the write's version.
   * @throws OpenBatchError 404 when a class has no row: another server deleted it after this one last caught up, and
   *   objects written now would outlive their class.
   */
  private async lockClasses(c: pg.PoolClient, classes: string[]): Promise<number> {
    const names = [...new Set(classes)].sort();
    const locked = new Set((await c.query<{ name: string }>(`SELECT name FROM collection_classes WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`, [names])).rows.map((r) => r.name));
    const gone = names.find((n) => !locked.has(n));
    if (gone !== undefined) throw notFound(`class ${JSON.stringify(gone)} not found: it was deleted (through another server) while this write was on its way; create it again and retry`);
    const version = (await c.query<{ v: number }>(`SELECT nextval('collection_version_seq') AS v`)).rows[0]!.v;
    await c.query(`UPDATE collection_classes SET version = $2 WHERE name = ANY($1::text[])`, [names, version]);
    return version;
  }

  async listClasses(): Promise<StoredClass[]> {
    const rows = await this.db.rows(`SELECT name, definition, owner, version, created_at FROM collection_classes ORDER BY created_at, name`);
    return rows.map((r) => ({ name: r.name as string, definition: JSON.parse(r.definition as string), owner: (r.owner as string | null) ?? null, version: r.version as number, created_at: r.created_at as number }));
  }

  /**
   * Creates or replaces a class definition. A replacement keeps every property the stored one has and `definition`
   * lacks (another server added it meanwhile: class-merge.ts), so concurrent schema changes never lose a property.
   * @throws OpenBatchError 409 when a property name is stored with another data type.
   */
  async putClass(name: string, definition: unknown, owner: string | null): Promise<void> {
    // A replaced definition keeps its owner and takes a version (under the row lock), so other processes see it changed.
    const { version, kept } = await this.db.tx(async (c) => {
      const inserted = await c.query(`INSERT INTO collection_classes (name, definition, owner, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`, [
        name,
        JSON.stringify(definition),
        owner,
        Date.now(),
      ]);
      if (inserted.rowCount) return { version: 0, kept: false };
      const v = await this.lockClasses(c, [name]);
      const stored = (await c.query<{ definition: string }>(`SELECT definition FROM collection_classes WHERE name = $1`, [name])).rows[0]!;
      const merged = mergeClassDefinition(name, JSON.parse(stored.definition), definition);
      await c.query(`UPDATE collection_classes SET definition = $2, def_version = $3 WHERE name = $1`, [name, JSON.stringify(merged.definition), v]);
      return { version: v, kept: merged.kept };
    });
    // A merged definition is not the one this process holds: left unremembered, its next catch-up reads it back.
    if (version > 0 && !kept) this.remember(name, version);
  }

  async deleteClass(name: string): Promise<void> {
    await this.db.tx(async (c) => {
      // The class row first, as every writer locks it: a delete never deadlocks with a write to the class.
      await c.query(`SELECT name FROM collection_classes WHERE name = $1 FOR UPDATE`, [name]);
      await c.query(`DELETE FROM collection_references WHERE from_class = $1`, [name]);
      await c.query(`DELETE FROM collection_objects WHERE class = $1`, [name]);
      await c.query(`DELETE FROM collection_tombstones WHERE class = $1`, [name]);
      await c.query(`DELETE FROM collection_classes WHERE name = $1`, [name]);
    });
    this.own.delete(name);
  }

  async upsertObjects(writes: ObjectWrite[], now: number): Promise<ObjectWriteResult[]> {
    if (writes.length === 0) return [];
    // One bulk statement cannot touch a row twice: a key's n-th occurrence goes in round n, rounds in order.
    const rounds: number[][] = [];
    const seen = new Map<string, number>();
    writes.forEach((w, i) => {
      const key = `${w.class}\u0000${w.id}`;
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      (rounds[n] ??= []).push(i);
    });
    const { results, version } = await this.db.tx(async (c) => {
      const version = await this.lockClasses(c, writes.map((w) => w.class));
      const results: ObjectWriteResult[] = new Array(writes.length);
      for (const round of rounds) {
        const ws = round.map((i) => writes[i]!);
        const classes = ws.map((w) => w.class);
        const ids = ws.map((w) => w.id);
        const before = new Map(
          (
            await c.query(
              `SELECT o.class, o.id, o.vector IS NOT NULL AS has_vector, o.vectors FROM collection_objects o
               JOIN unnest($1::text[], $2::text[]) AS k(class, id) ON o.class = k.class AND o.id = k.id`,
              [classes, ids],
            )
          ).rows.map((r: Row) => [`${r.class as string}\u0000${r.id as string}`, r]),
        );
        const written = (
          await c.query(
            `INSERT INTO collection_objects (class, id, properties, vector, vectors, change_version, created_at, updated_at)
             SELECT k.class, k.id, k.properties, k.vector, k.vectors, $6, $7, $7
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[]) AS k(class, id, properties, vector, vectors)
             ON CONFLICT (class, id) DO UPDATE SET properties = excluded.properties, vector = excluded.vector, vectors = excluded.vectors,
               change_version = excluded.change_version, updated_at = excluded.updated_at
             RETURNING class, id, seq, created_at, updated_at`,
            [classes, ids, ws.map((w) => JSON.stringify(w.properties)), ws.map((w) => toBlob(w.vector)), ws.map((w) => toNamed(w.vectors)), version, now],
          )
        ).rows as Row[];
        const after = new Map(written.map((r) => [`${r.class as string}\u0000${r.id as string}`, r]));
        const existed = ws.filter((w) => before.has(`${w.class}\u0000${w.id}`));
        if (existed.length) {
          await c.query(
            `DELETE FROM collection_references r USING unnest($1::text[], $2::text[]) AS k(class, id) WHERE r.from_class = k.class AND r.from_id = k.id`,
            [existed.map((w) => w.class), existed.map((w) => w.id)],
          );
        }
        const refs = ws.flatMap((w) => w.references.map((r) => [w.class, w.id, r.property, r.to_class, r.to_id]));
        if (refs.length) {
          await c.query(
            `INSERT INTO collection_references (from_class, from_id, property, to_class, to_id)
             SELECT a, b, c, d, e FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS k(a, b, c, d, e, n) ORDER BY n`,
            [0, 1, 2, 3, 4].map((j) => refs.map((r) => r[j])),
          );
        }
        round.forEach((i) => {
          const w = writes[i]!;
          const key = `${w.class}\u0000${w.id}`;
          const b = before.get(key);
          const a = after.get(key)!;
          results[i] = {
            seq: a.seq as number,
            created_at: a.created_at as number,
            updated_at: a.updated_at as number,
            created: !b,
            hadVector: b?.has_vector === true,
            hadVectors: namedKeys(b?.vectors),
          };
        });
      }
      return { results, version };
    });
    for (const cls of new Set(writes.map((w) => w.class))) this.remember(cls, version);
    return results;
  }

  async getObject(cls: string, id: string, withVector: boolean): Promise<StoredObject | null> {
    const rows = await this.db.rows(`SELECT ${COLUMNS(withVector)} FROM collection_objects WHERE class = $1 AND id = $2`, [cls, id]);
    return rows[0] ? toObject(rows[0]) : null;
  }

  async classesOfObject(id: string): Promise<string[]> {
    return (await this.db.rows<{ class: string }>(`SELECT class FROM collection_objects WHERE id = $1 ORDER BY seq`, [id])).map((r) => r.class);
  }

  async objectsBySeq(cls: string, seqs: readonly number[], withVectors: boolean): Promise<StoredObject[]> {
    if (seqs.length === 0) return [];
    return (await this.db.rows(`SELECT ${COLUMNS(withVectors)} FROM collection_objects WHERE class = $1 AND seq = ANY($2::bigint[])`, [cls, [...seqs]])).map(toObject);
  }

  async scanObjects(cls: string, afterSeq: number, limit: number, withVectors: boolean): Promise<StoredObject[]> {
    return (await this.db.rows(`SELECT ${COLUMNS(withVectors)} FROM collection_objects WHERE class = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [cls, afterSeq, limit])).map(toObject);
  }

  async countObjects(): Promise<Map<string, number>> {
    const rows = await this.db.rows<{ class: string; n: number }>(`SELECT class, count(*) AS n FROM collection_objects GROUP BY class`);
    return new Map(rows.map((r) => [r.class, r.n]));
  }

  async countVectors(cls: string, name?: string): Promise<number> {
    if (name === undefined || name === "default") return (await this.db.rows<{ n: number }>(`SELECT count(*) AS n FROM collection_objects WHERE class = $1 AND vector IS NOT NULL`, [cls]))[0]!.n;
    return (await this.db.rows<{ n: number }>(`SELECT count(*) AS n FROM collection_objects WHERE class = $1 AND vectors IS NOT NULL AND (vectors::jsonb) ? $2`, [cls, name]))[0]!.n;
  }

  async deleteObjects(cls: string, ids: readonly string[]): Promise<{ deleted: string[]; vectorSeqs: number[]; namedSeqs: Record<string, number[]> }> {
    if (ids.length === 0) return { deleted: [], vectorSeqs: [], namedSeqs: {} };
    const { rows, version } = await this.db.tx(async (c) => {
      const version = await this.lockClasses(c, [cls]);
      const rows = (await c.query(`DELETE FROM collection_objects WHERE class = $1 AND id = ANY($2::text[]) RETURNING id, seq, vector IS NOT NULL AS has_vector, vectors`, [cls, [...ids]])).rows as Row[];
      if (rows.length) {
        await c.query(`DELETE FROM collection_references WHERE from_class = $1 AND from_id = ANY($2::text[])`, [cls, rows.map((r) => r.id)]);
        const now = Date.now();
        await c.query(`INSERT INTO collection_tombstones (class, seq, version, deleted_at) SELECT $1, s, $3, $4 FROM unnest($2::bigint[]) AS s`, [cls, rows.map((r) => r.seq), version, now]);
        // Old tombstones go; the class records up to which version they are gone (readers behind it rebuild).
        const pruned = (await c.query<{ version: number }>(`DELETE FROM collection_tombstones WHERE class = $1 AND deleted_at < $2 RETURNING version`, [cls, now - TOMBSTONE_TTL_MS])).rows;
        if (pruned.length) await c.query(`UPDATE collection_classes SET pruned_version = GREATEST(pruned_version, $2) WHERE name = $1`, [cls, Math.max(...pruned.map((p) => p.version))]);
      }
      return { rows, version };
    });
    this.remember(cls, version);
    // In the order asked for, as the SQLite store answers.
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    const vectorSeqs: number[] = [];
    const namedSeqs: Record<string, number[]> = {};
    const deleted: string[] = [];
    for (const id of ids) {
      const r = byId.get(id);
      if (!r) continue;
      byId.delete(id);
      deleted.push(id);
      if (r.has_vector) vectorSeqs.push(r.seq as number);
      for (const name of namedKeys(r.vectors)) (namedSeqs[name] ??= []).push(r.seq as number);
    }
    return { deleted, vectorSeqs, namedSeqs };
  }

  async addReferences(refs: readonly StoredReference[]): Promise<void> {
    if (refs.length === 0) return;
    await this.db.rows(
      `INSERT INTO collection_references (from_class, from_id, property, to_class, to_id)
       SELECT a, b, c, d, e FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS k(a, b, c, d, e, n) ORDER BY n`,
      [refs.map((r) => r.from_class), refs.map((r) => r.from_id), refs.map((r) => r.property), refs.map((r) => r.to_class), refs.map((r) => r.to_id)],
    );
  }

  async deleteReferences(cls: string, id: string, property: string, to: { to_class: string; to_id: string } | null): Promise<number> {
    const r = to
      ? await this.db.pool.query(`DELETE FROM collection_references WHERE from_class = $1 AND from_id = $2 AND property = $3 AND to_class = $4 AND to_id = $5`, [cls, id, property, to.to_class, to.to_id])
      : await this.db.pool.query(`DELETE FROM collection_references WHERE from_class = $1 AND from_id = $2 AND property = $3`, [cls, id, property]);
    return r.rowCount ?? 0;
  }

  async referencesFrom(cls: string, ids: readonly string[]): Promise<StoredReference[]> {
    if (ids.length === 0) return [];
    return this.db.rows<StoredReference>(
      `SELECT from_class, from_id, property, to_class, to_id FROM collection_references WHERE from_class = $1 AND from_id = ANY($2::text[]) ORDER BY seq`,
      [cls, [...ids]],
    );
  }

  // ---------------------------------------------------------------- change feed

  async classVersions(): Promise<ClassVersion[]> {
    return this.db.rows<ClassVersion>(`SELECT name, version, created_at, pruned_version, def_version FROM collection_classes`);
  }

  async changesSince(cls: string, sinceVersion: number, after: { version: number; seq: number } | null, limit: number): Promise<ClassChanges> {
    const own = this.ownOf(cls);
    const rows = await this.db.rows(
      `SELECT ${COLUMNS(true)}, change_version FROM collection_objects
       WHERE class = $1 AND change_version > $2 AND (change_version, seq) > ($3, $4) AND NOT (change_version = ANY($5::bigint[]))
       ORDER BY change_version, seq LIMIT $6`,
      [cls, sinceVersion, after?.version ?? 0, after?.seq ?? 0, own, limit],
    );
    // Deletes come after the writes were read: an object written and then deleted meanwhile is dropped by its tombstone.
    const removed = after
      ? []
      : (await this.db.rows<{ seq: number }>(`SELECT seq FROM collection_tombstones WHERE class = $1 AND version > $2 AND NOT (version = ANY($3::bigint[]))`, [cls, sinceVersion, own])).map((r) => r.seq);
    const last = rows.at(-1);
    return {
      upserted: rows.map(toObject),
      removed,
      more: rows.length === limit,
      cursor: last ? { version: last.change_version as number, seq: last.seq as number } : null,
    };
  }

  async hasChangesSince(cls: string, sinceVersion: number): Promise<boolean> {
    const own = this.ownOf(cls);
    const rows = await this.db.rows(
      `SELECT 1 FROM collection_objects WHERE class = $1 AND change_version > $2 AND NOT (change_version = ANY($3::bigint[]))
       UNION ALL SELECT 1 FROM collection_tombstones WHERE class = $1 AND version > $2 AND NOT (version = ANY($3::bigint[])) LIMIT 1`,
      [cls, sinceVersion, own],
    );
    return rows.length > 0;
  }

  isOwn(cls: string, version: number): boolean {
    return this.own.get(cls)?.has(version) ?? false;
  }

  forgetOwn(cls: string, version: number): void {
    const set = this.own.get(cls);
    if (!set) return;
    for (const v of set) if (v <= version) set.delete(v);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
