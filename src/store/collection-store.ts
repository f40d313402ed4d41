/**
 * Persistence of Weaviate-style collections: class definitions, objects (properties + vector) and cross-references.
 * All SQL lives behind this interface (store/sqlite/collection-store.ts). Times are unix ms; object ids are lower-case
 * UUIDs, unique within a class; `seq` is a stable integer per object (the vector index's label).
 */

/** A class as stored: its definition (Weaviate class JSON), its owner and a counter bumped by every write to its objects. */
export interface StoredClass {
  name: string;
  definition: unknown;
  /** Owner fingerprint of the API key that created it (see api/auth.ts ownerOf); null when created with auth off. */
  owner: string | null;
  /** Bumped by every object write or delete in the class; a saved vector index is valid only for the version it saw. */
  version: number;
  created_at: number;
}

/** An object as stored. */
export interface StoredObject {
  seq: number;
  class: string;
  id: string;
  properties: Record<string, unknown>;
  /** Null when not read (see `withVectors`) or when the object has none. The legacy vector, which is also the named vector `default`. */
  vector: Float32Array | null;
  /** Named vectors other than `default`; null when not read or when it has none. */
  vectors: Record<string, Float32Array> | null;
  created_at: number;
  updated_at: number;
}

/** A cross-reference from a property of one object to another object. */
export interface StoredReference {
  from_class: string;
  from_id: string;
  property: string;
  to_class: string;
  to_id: string;
}

/** One object to insert or replace. */
export interface ObjectWrite {
  class: string;
  id: string;
  properties: Record<string, unknown>;
  vector: Float32Array | null;
  /** Named vectors other than `default` (they replace any it had). */
  vectors?: Record<string, Float32Array> | null;
  /** The object's cross-references (they replace any it had). */
  references: { property: string; to_class: string; to_id: string }[];
}

/** What an upsert did to one object. */
export interface ObjectWriteResult {
  seq: number;
  created_at: number;
  updated_at: number;
  /** True when the object did not exist before. */
  created: boolean;
  /** True when the object existed and had a vector (so the index holds its label). */
  hadVector: boolean;
  /** Names of the named vectors (other than `default`) the object had before. */
  hadVectors: string[];
}

/** A class's change marker, as `CollectionChangeFeed.classVersions` reads it. */
export interface ClassVersion {
  name: string;
  version: number;
  created_at: number;
  /**
   * Tombstones of deletes at or below this version were pruned: a reader whose index reflects an older version cannot
   * catch up by tombstones and must rebuild from the stored vectors.
   */
  pruned_version: number;
  /** Version of the last change to its definition (0: unchanged since created). */
  def_version: number;
}

/** What other processes changed in a class since a version (CollectionChangeFeed.changesSince). */
export interface ClassChanges {
  /** Objects written by another process after the version, with their vectors (at most `limit`; more when `more`). */
  upserted: StoredObject[];
  /** Seqs of objects another process deleted after the version. */
  removed: number[];
  /** True when `upserted` was cut at `limit`: call again with `after` = the last object's (version, seq). */
  more: boolean;
  /** Keyset cursor of the last object returned: pass it back as `after` for the next page. */
  cursor: { version: number; seq: number } | null;
}

/**
 * A store many processes share (PostgreSQL) tells each what the others changed, so each keeps its in-memory indexes
 * current (collections/store-sync.ts). Versions come from one database-wide sequence, taken under the class row's
 * lock, so within a class they grow in commit order; writes this process made are left out (it indexed them itself).
 */
export interface CollectionChangeFeed {
  /** Every class's current version, one cheap query. */
  classVersions(): Promise<ClassVersion[]>;
  /**
   * Objects of `cls` written, and seqs deleted, by other processes with a version above `sinceVersion`, in (version,
   * seq) order after `after`, at most `limit` objects per call (deletes all at once, on the first page).
   */
  changesSince(cls: string, sinceVersion: number, after: { version: number; seq: number } | null, limit: number): Promise<ClassChanges>;
  /**
   * Whether another process wrote or deleted objects of `cls` with a version above `sinceVersion` (a cheap check that
   * lets a reader whose class moved on by its own writes alone skip the catch-up).
   */
  hasChangesSince(cls: string, sinceVersion: number): Promise<boolean>;
  /** Whether this process made the write of `cls` with this version. */
  isOwn(cls: string, version: number): boolean;
  /** Forgets this process's own writes of `cls` at or below `version` (the reader has caught up past them). */
  forgetOwn(cls: string, version: number): void;
}

/** Where collections are kept (store/sqlite/collection-store.ts). Every method that writes runs in one transaction. */
export interface CollectionStore {
  /** Present on a store many processes share (store/postgres/collection-store.ts); absent on the embedded SQLite one. */
  readonly changes?: CollectionChangeFeed;
  listClasses(): Promise<StoredClass[]>;
  /**
   * Creates or replaces a class definition. `owner` (an owner fingerprint, or null with auth off) is recorded when the
   * class is created; replacing a definition keeps the owner it was created with.
   */
  putClass(name: string, definition: unknown, owner: string | null): Promise<void>;
  /** Deletes a class with its objects and the references from them, in one transaction. */
  deleteClass(name: string): Promise<void>;

  /** Inserts or replaces objects (each keeps its seq and creation time), in one transaction; bumps the classes' versions. */
  upsertObjects(writes: ObjectWrite[], now: number): Promise<ObjectWriteResult[]>;
  getObject(cls: string, id: string, withVector: boolean): Promise<StoredObject | null>;
  /** Classes holding an object with this id. */
  classesOfObject(id: string): Promise<string[]>;
  /** Objects of a class by seq (any order; missing ones left out). */
  objectsBySeq(cls: string, seqs: readonly number[], withVectors: boolean): Promise<StoredObject[]>;
  /** Objects of a class in seq order after `afterSeq`, at most `limit`. */
  scanObjects(cls: string, afterSeq: number, limit: number, withVectors: boolean): Promise<StoredObject[]>;
  /** Number of objects per class. */
  countObjects(): Promise<Map<string, number>>;
  /** Number of objects with a vector in a class: the legacy / `default` one, or the named vector `name`. */
  countVectors(cls: string, name?: string): Promise<number>;
  /**
   * Deletes objects of a class and the references from them, in one transaction. @returns the ids deleted, the seqs
   * of those that had a (`default`) vector, and for each other named vector the seqs of those that had it.
   */
  deleteObjects(cls: string, ids: readonly string[]): Promise<{ deleted: string[]; vectorSeqs: number[]; namedSeqs: Record<string, number[]> }>;

  /** Appends references, in one transaction. */
  addReferences(refs: readonly StoredReference[]): Promise<void>;
  /**
   * Deletes references from one object's property, in one transaction: those to `to` (class and id), or all of them
   * when `to` is null. @returns how many were deleted.
   */
  deleteReferences(cls: string, id: string, property: string, to: { to_class: string; to_id: string } | null): Promise<number>;
  /** References from these objects of a class, in insertion order. */
  referencesFrom(cls: string, ids: readonly string[]): Promise<StoredReference[]>;

  close(): Promise<void>;
}
