import { join } from "node:path";
import type { StoredObject } from "../store/collection-store.js";
import { CollectionAccess, type Caller, type CollectionAction } from "./access.js";
import type { CollectionServiceOptions } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { normalizeClassName, vectorSlots, type ClassDef } from "./schema.js";
import { DEFAULT_VECTOR, type VectorSlot } from "./vector-config.js";
import { openVectorIndex, type VectorIndex } from "./vector-index.js";
import type { Predicate } from "./where-filter.js";

/*
 * The state every part of the collections service shares (classes in memory, locks, batch statistics) and the helpers
 * they all use. schema-ops.ts, batch-import.ts, reference-ops.ts, object-ops.ts and search.ts are functions over a
 * CollectionContext; collection-service.ts is the public facade over them.
 */

/** Window of `ratePerSecond`, seconds. */
const RATE_WINDOW_S = 5;

/** Runs async sections one at a time. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Objects accepted but not yet stored and indexed, and objects finished per second over the last few seconds. */
export class BatchStats {
  private pending = 0;
  private readonly perSecond = new Map<number, number>();
  private busySince = 0;
  private lastDone = 0;

  accept(n: number): void {
    this.pending += n;
  }

  finish(n: number, now = Date.now()): void {
    this.pending -= n;
    if (now - this.lastDone > RATE_WINDOW_S * 1000) this.busySince = now;
    this.lastDone = now;
    const sec = Math.floor(now / 1000);
    this.perSecond.set(sec, (this.perSecond.get(sec) ?? 0) + n);
    for (const s of this.perSecond.keys()) if (s <= sec - RATE_WINDOW_S) this.perSecond.delete(s);
  }

  get(now = Date.now()): { queueLength: number; ratePerSecond: number } {
    const sec = Math.floor(now / 1000);
    let done = 0;
    for (const [s, n] of this.perSecond) if (s > sec - RATE_WINDOW_S) done += n;
    const windowS = Math.max(1, Math.min(RATE_WINDOW_S, (now - this.busySince) / 1000));
    return { queueLength: this.pending, ratePerSecond: done === 0 ? 0 : Math.round(done / windowS) };
  }
}

/** A class in memory: its definition, owner, vector index and object count. */
export interface ClassState {
  def: ClassDef;
  /** Owner fingerprint of the key that created it; null when created with auth off. */
  owner: string | null;
  /** The index of the legacy vector, which is also the named vector `default` (empty for named classes without one). */
  index: VectorIndex;
  /** One index per named vector other than `default`. */
  named: Map<string, VectorIndex>;
  count: number;
  lastWrite: number;
  lastSave: number;
}

/** A plain JSON object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
/** Weaviate's message for a class that does not exist. */
export const notPresent = (cls: string) => `class '${cls}' not present in schema`;

/**
 * The shared state of one CollectionService. Schema changes run one at a time (`schemaLock`); writes to objects and
 * indexes too (`writeLock`). Vectorization runs outside both, so concurrent batch requests embed in parallel.
 */
export class CollectionContext {
  readonly classes = new Map<string, ClassState>();
  readonly schemaLock = new Mutex();
  readonly writeLock = new Mutex();
  readonly stats = new BatchStats();
  readonly autoSchema: boolean;
  /** Admins and grants; owners are per class. */
  readonly access: CollectionAccess;
  /** Property counts as last persisted, to tell when auto-schema changed a class. */
  readonly persistedProps = new WeakMap<ClassState, number>();
  /**
   * On a shared store (PostgreSQL): per class, the store version its indexes reflect every other process's writes up
   * to, and the class row's creation time (a different one means it was dropped and created again). See store-sync.ts.
   */
  readonly synced = new WeakMap<ClassState, { version: number; createdAt: number }>();

  constructor(readonly options: CollectionServiceOptions) {
    this.autoSchema = options.autoSchema ?? true;
    this.access = options.access ?? CollectionAccess.ownersOnly;
  }

  /**
   * Opens a class's vector index for one vector slot (the `default` one when `slot` is absent): the saved one when it
   * matches the store `version`, else rebuilt from the stored vectors. `dynamic` is served by HNSW.
   */
  async openIndex(def: ClassDef, version: number, slot?: VectorSlot): Promise<VectorIndex> {
    const store = this.options.store;
    const slots = vectorSlots(def);
    const s = slot ?? slots.find((x) => x.name === DEFAULT_VECTOR) ?? slots[0]!;
    const isDefault = s.name === DEFAULT_VECTOR;
    const file = isDefault ? `${def.class}.hnsw` : `${def.class}~${s.name}.hnsw`;
    return openVectorIndex({
      path: this.options.indexDir ? join(this.options.indexDir, file) : null,
      indexType: s.indexType === "flat" ? "flat" : "hnsw",
      config: s.indexConfig,
      version,
      live: await store.countVectors(def.class, isDefault ? undefined : s.name),
      stored: async function* () {
        for (let after = 0; ; ) {
          const page = await store.scanObjects(def.class, after, 1000, true);
          if (page.length === 0) return;
          for (const o of page) {
            const v = isDefault ? o.vector : (o.vectors?.[s.name] ?? null);
            if (v) yield { label: o.seq, vector: v };
          }
          after = page.at(-1)!.seq;
        }
      },
    });
  }

  /** Opens the indexes of a class: the `default` one and one per other named vector. */
  async openIndexes(def: ClassDef, version: number): Promise<{ index: VectorIndex; named: Map<string, VectorIndex> }> {
    const index = await this.openIndex(def, version);
    const named = new Map<string, VectorIndex>();
    for (const slot of vectorSlots(def)) if (slot.name !== DEFAULT_VECTOR && def.vectorConfig) named.set(slot.name, await this.openIndex(def, version, slot));
    return { index, named };
  }

  /** The index of a vector slot of a class. */
  indexOf(st: ClassState, name: string): VectorIndex {
    return name === DEFAULT_VECTOR ? st.index : (st.named.get(name) ?? st.index);
  }

  /** Every index of a class. */
  indexesOf(st: ClassState): VectorIndex[] {
    return [st.index, ...st.named.values()];
  }

  /**
   * Hands each open vector index of a class the search settings (ef, dynamicEf*) of its current definition, so a
   * changed ef holds from the next search on, with no rebuild and no swap under searches in flight.
   */
  configureIndexes(st: ClassState): void {
    for (const slot of vectorSlots(st.def)) (slot.name === DEFAULT_VECTOR ? st.index : st.named.get(slot.name))?.configure(slot.indexConfig);
  }

  /** Saves the indexes of one class with the store version they reflect. Call inside the write lock. */
  async saveIndex(name: string, st: ClassState): Promise<void> {
    if (this.classes.get(name) !== st || !this.indexesOf(st).some((i) => i.dirty)) return;
    // On a shared store the index is only known to hold the others' writes up to the version it caught up to; saved
    // under it, a restart loads it only while nothing was written since, else rebuilds.
    const synced = this.options.store.changes ? this.synced.get(st) : undefined;
    if (this.options.store.changes && !synced) return;
    const version = synced ? synced.version : ((await this.options.store.listClasses()).find((c) => c.name === name)?.version ?? 0);
    for (const index of this.indexesOf(st)) if (index.dirty) await index.save(version);
    st.lastSave = Date.now();
  }

  /**
   * The state of a class `caller` may do `action` on.
   * @throws CollectionError 422 when the class does not exist, 403 when the caller may not do `action` on it.
   */
  requireClass(cls: string, caller: Caller, action: CollectionAction): ClassState {
    const st = this.classes.get(normalizeClassName(cls));
    if (!st) throw unprocessable(notPresent(normalizeClassName(cls)));
    this.authorize(caller, st, action);
    return st;
  }

  /** @throws CollectionError 403 unless `caller` may do `action` on the class. */
  authorize(caller: Caller, st: ClassState, action: CollectionAction): void {
    this.access.require(caller, action, st.def.class, st.owner);
  }

  /** Whether `caller` may do `action` on the class. */
  allows(caller: Caller, st: ClassState, action: CollectionAction): boolean {
    return this.access.allows(caller, action, st.def.class, st.owner);
  }

  /** Objects of a class in seq order that match `predicate`, until `visit` returns false. */
  async scan(st: ClassState, predicate: Predicate | null, visit: (o: StoredObject) => boolean, afterSeq = 0, withVectors = false): Promise<void> {
    for (let after = afterSeq; ; ) {
      const page = await this.options.store.scanObjects(st.def.class, after, 1000, withVectors);
      if (page.length === 0) return;
      for (const o of page) if ((!predicate || predicate(o)) && !visit(o)) return;
      after = page.at(-1)!.seq;
    }
  }
}
