import type { StoredObject } from "../store/collection-store.js";
import type { ClassState, CollectionContext } from "./collection-context.js";
import type { ClassDef } from "./schema.js";

/** A class's index: being built by a scan (writes meanwhile queued, replayed after it), or built and kept up. */
interface Entry<I> {
  /** What the index is built for (the properties it covers): a schema change that alters it rebuilds. */
  key: string;
  index: I | null;
  building: Promise<I> | null;
  queue: ((idx: I) => void)[];
}

/**
 * The in-memory indexes of one kind, one per class (per tenant): each built by one scan of the stored objects on first
 * use, then kept current by the write hooks calling `apply`. Writes stored while the scan runs are queued and replayed
 * in order after it (an upsert or remove the scan already saw changes nothing); when `keyOf` of the class's
 * definition changes (the properties the index covers), the index is dropped and rebuilt on next use. Serves the
 * keyword index (inverted-index.ts) and the filterable index (filter-index.ts).
 */
export class ScannedIndexes<I extends { upsert(o: StoredObject): void }> {
  private readonly entries = new WeakMap<ClassState, Entry<I>>();

  /**
   * @param keyOf what of a class definition the index is built from, as a comparable string.
   * @param make an empty index for a class definition.
   */
  constructor(
    private readonly keyOf: (def: ClassDef) => string,
    private readonly make: (def: ClassDef) => I,
  ) {}

  /** The class's index, built by a scan when there is none for its current definition. @throws Error when the store cannot be read. */
  async of(ctx: CollectionContext, st: ClassState): Promise<I> {
    const key = this.keyOf(st.def);
    const hit = this.entries.get(st);
    if (hit && hit.key === key) return hit.index ?? hit.building!;
    const entry: Entry<I> = { key, index: null, building: null, queue: [] };
    entry.building = (async () => {
      const idx = this.make(st.def);
      await ctx.scan(st, null, (o) => (idx.upsert(o), true));
      for (const op of entry.queue) op(idx);
      entry.queue = [];
      entry.index = idx;
      entry.building = null;
      return idx;
    })();
    this.entries.set(st, entry);
    try {
      return await entry.building;
    } catch (err) {
      if (this.entries.get(st) === entry) this.entries.delete(st);
      throw err;
    }
  }

  /** The class's index when it is built (null while none is, or while it is being built). */
  built(st: ClassState): I | null {
    return this.entries.get(st)?.index ?? null;
  }

  /** Applies a write to the class's index: now when built, after the scan when building, not at all when there is none. */
  apply(st: ClassState, op: (idx: I) => void): void {
    const e = this.entries.get(st);
    if (!e) return; // not built yet: its first use scans the store
    if (e.key !== this.keyOf(st.def)) return void this.entries.delete(st); // covered properties changed: rebuilt on next use
    if (e.index) op(e.index);
    else e.queue.push(op);
  }

  /** Forgets the class's index (its objects were reloaded wholesale): the next use rebuilds it. */
  drop(st: ClassState): void {
    this.entries.delete(st);
  }
}
