import type { StoredObject } from "../store/collection-store.js";
import type { ClassState, CollectionContext } from "./collection-context.js";
import { isReferenceType, type ClassDef, type PropertyDef } from "./schema.js";
import { ScannedIndexes } from "./scanned-index.js";
import { tokenize } from "./where-filter.js";

/*
 * The filterable index of a class (of one tenant's partition: each has its own ClassState): per object its id,
 * timestamps and the values of its filterable properties (`indexFilterable`, not references), so a `where` filter is
 * answered in memory instead of by a scan of the store (filter-plan.ts turns a filter into an allow-list over it).
 *
 * Per property, on first use, a column of Weaviate's filterable buckets: value → objects, where a text value is its
 * tokens by the property's tokenization and every other value is its elements (arrays) — exactly the "tokens" the
 * evaluator (where-filter.ts) compares, so Equal / Contains* are set lookups; numbers and dates keep their distinct
 * values sorted for the range operators. A column whose stored values are not of the property's type (data written
 * before a schema change, say) is marked irregular and left to the evaluator over the records held here.
 *
 * Built from the store by a scan on a class's first filtered search, then kept up per object by the same hooks as the
 * inverted index (inverted-index.ts forwards `invertedIndexWritten` / `invertedIndexRemoved` / `invertedIndexDropped`
 * here): batch-import.ts, object-ops.ts and store-sync.ts. The batch hook does not carry the objects' timestamps; those
 * objects are marked, and a filter on `_creationTimeUnix` / `_lastUpdateTimeUnix` first reads them from the store.
 */

/** What the index holds of one object: what a `where` predicate reads (where-filter.ts FilterTarget). */
export interface FilterRecord {
  id: string;
  /** Its filterable properties only. */
  properties: Record<string, unknown>;
  /** Unix ms; undefined until known (see the file comment). */
  created_at?: number;
  updated_at?: number;
}

/** An object as the write hooks hand it in; timestamps when the writer has them. */
export type IndexedObject = Pick<StoredObject, "seq" | "id" | "properties"> & Partial<Pick<StoredObject, "created_at" | "updated_at">>;

/** How a column keys values: text by tokens, the scalar types by their (normalized) elements. */
type ColumnKind = "text" | "number" | "date" | "boolean" | "uuid";

const DATE_LIKE = /^\d{4}-\d{2}-\d{2}T/;

/**
 * One property's filterable bucket. `postings` maps each key (a token, or a normalized element: a number, unix ms
 * for dates, a boolean, a string) to the objects holding it; `present` holds the objects with a non-null value.
 */
export class FilterColumn {
  readonly postings = new Map<string | number | boolean, Set<number>>();
  readonly present = new Set<number>();
  /** Objects whose value has an element not of the property's type; while > 0 the planner does not use the column. */
  irregular = 0;
  private sorted: Float64Array | null = null;

  constructor(
    readonly kind: ColumnKind,
    private readonly tokenization: PropertyDef["tokenization"],
  ) {}

  /** The keys of one value, or null when an element is not of the column's type. */
  keysOf(value: unknown): Set<string | number | boolean> | null {
    const out = new Set<string | number | boolean>();
    for (const el of Array.isArray(value) ? value : [value]) {
      switch (this.kind) {
        case "text":
          for (const t of tokenize(String(el), this.tokenization)) out.add(t);
          break;
        case "number":
          if (typeof el !== "number") return null;
          out.add(el);
          break;
        case "date": {
          const t = typeof el === "string" && DATE_LIKE.test(el) ? Date.parse(el) : NaN;
          if (Number.isNaN(t)) return null;
          out.add(t);
          break;
        }
        case "boolean":
          if (typeof el !== "boolean") return null;
          out.add(el);
          break;
        case "uuid":
          if (typeof el !== "string") return null;
          out.add(el);
      }
    }
    return out;
  }

  add(seq: number, value: unknown): void {
    if (value === undefined || value === null) return;
    this.present.add(seq);
    const keys = this.keysOf(value);
    if (!keys) return void this.irregular++;
    for (const k of keys) {
      let set = this.postings.get(k);
      if (!set) {
        this.postings.set(k, (set = new Set()));
        this.sorted = null;
      }
      set.add(seq);
    }
  }

  remove(seq: number, value: unknown): void {
    if (value === undefined || value === null) return;
    this.present.delete(seq);
    const keys = this.keysOf(value);
    if (!keys) return void this.irregular--;
    for (const k of keys) {
      const set = this.postings.get(k);
      if (!set) continue;
      set.delete(seq);
      if (set.size === 0) {
        this.postings.delete(k);
        this.sorted = null;
      }
    }
  }

  /** The objects holding a key (an empty set when none). */
  get(key: string | number | boolean): ReadonlySet<number> {
    return this.postings.get(key) ?? EMPTY;
  }

  /** Number and date columns: the distinct keys ascending (sorted again after a write added or dropped one). */
  sortedKeys(): Float64Array {
    if (!this.sorted) this.sorted = Float64Array.from(this.postings.keys() as Iterable<number>).sort();
    return this.sorted;
  }
}

const EMPTY: ReadonlySet<number> = new Set();

/** The column kind of a property's type; null for types only the evaluator compares (object, geo, phone, blob). */
function kindOf(p: PropertyDef): ColumnKind | null {
  switch (p.dataType[0]!.replace("[]", "")) {
    case "text":
      return "text";
    case "int":
    case "number":
      return "number";
    case "date":
      return "date";
    case "boolean":
      return "boolean";
    case "uuid":
      return "uuid";
    default:
      return null;
  }
}

/** Whether the index holds a property's values: filterable and not a cross-reference. */
export const isFilterable = (p: PropertyDef) => p.indexFilterable !== false && !isReferenceType(p.dataType);

/**
 * The in-memory filterable index of one class: records per object seq, ids, and columns built on first use.
 */
export class FilterIndex {
  readonly records = new Map<number, FilterRecord>();
  readonly seqOfId = new Map<string, number>();
  /** Objects whose timestamps are not known yet (written through a hook without them). */
  readonly untimed = new Set<number>();
  private readonly columns = new Map<string, FilterColumn | null>();
  private readonly held: Map<string, PropertyDef>;

  constructor(props: readonly PropertyDef[]) {
    this.held = new Map(props.map((p) => [p.name, p]));
  }

  /** Whether the index holds a property's values. */
  holds(name: string): boolean {
    return this.held.has(name);
  }

  /** The property definition of a held property. */
  property(name: string): PropertyDef | undefined {
    return this.held.get(name);
  }

  /** Indexes one object, replacing what the index held for its seq (an update) or its id (stored again under a new seq). */
  upsert(o: IndexedObject): void {
    const old = this.seqOfId.get(o.id);
    if (old !== undefined && old !== o.seq) this.removeSeq(old);
    this.removeSeq(o.seq);
    const properties: Record<string, unknown> = {};
    for (const name of this.held.keys()) {
      const v = o.properties[name];
      if (v !== undefined) properties[name] = v;
    }
    const rec: FilterRecord = { id: o.id, properties };
    if (o.created_at !== undefined && o.updated_at !== undefined) (rec.created_at = o.created_at), (rec.updated_at = o.updated_at);
    else this.untimed.add(o.seq);
    this.records.set(o.seq, rec);
    this.seqOfId.set(o.id, o.seq);
    for (const [name, col] of this.columns) col?.add(o.seq, properties[name]);
  }

  /** Drops the objects with these seqs (unknown ones are skipped). */
  removeSeqs(seqs: Iterable<number>): void {
    for (const seq of seqs) this.removeSeq(seq);
  }

  /** Drops the objects with these ids (unknown ones are skipped). */
  removeIds(ids: Iterable<string>): void {
    for (const id of ids) {
      const seq = this.seqOfId.get(id);
      if (seq !== undefined) this.removeSeq(seq);
    }
  }

  private removeSeq(seq: number): void {
    const rec = this.records.get(seq);
    if (!rec) return;
    for (const [name, col] of this.columns) col?.remove(seq, rec.properties[name]);
    this.records.delete(seq);
    this.untimed.delete(seq);
    if (this.seqOfId.get(rec.id) === seq) this.seqOfId.delete(rec.id);
  }

  /** A held property's column (built from the records on first use, then kept up); null for types it does not key. */
  column(name: string): FilterColumn | null {
    if (this.columns.has(name)) return this.columns.get(name)!;
    const p = this.held.get(name);
    const kind = p ? kindOf(p) : null;
    const col = kind ? new FilterColumn(kind, p!.tokenization) : null;
    if (col) for (const [seq, rec] of this.records) col.add(seq, rec.properties[name]);
    this.columns.set(name, col);
    return col;
  }

  /** Sets the timestamps of an untimed object, if the index still holds `rec` for `seq` (no write since). */
  setTimes(seq: number, rec: FilterRecord, created_at: number, updated_at: number): void {
    if (this.records.get(seq) !== rec) return;
    rec.created_at = created_at;
    rec.updated_at = updated_at;
    this.untimed.delete(seq);
  }
}

const filterableOf = (def: ClassDef) => def.properties.filter(isFilterable);
const indexes = new ScannedIndexes<FilterIndex>(
  (def) => JSON.stringify(filterableOf(def).map((p) => [p.name, p.dataType, p.tokenization ?? null])),
  (def) => new FilterIndex(filterableOf(def)),
);

/**
 * The filterable index of a class: built by a scan of the stored objects on first use (or after a change of its
 * filterable properties), then kept current through `filterIndexWritten` / `filterIndexRemoved`.
 * @throws Error when the store cannot be read.
 */
export function filterIndexOf(ctx: CollectionContext, st: ClassState): Promise<FilterIndex> {
  return indexes.of(ctx, st);
}

/** Objects of the class just stored (inserted or replaced), with the seqs the store gave them. Call after the write. */
export function filterIndexWritten(st: ClassState, objects: readonly IndexedObject[]): void {
  if (objects.length) indexes.apply(st, (idx) => objects.forEach((o) => idx.upsert(o)));
}

/** Objects of the class just deleted, by id or by seq. Call after the delete. */
export function filterIndexRemoved(st: ClassState, removed: { ids?: readonly string[]; seqs?: readonly number[] }): void {
  indexes.apply(st, (idx) => {
    if (removed.ids) idx.removeIds(removed.ids);
    if (removed.seqs) idx.removeSeqs(removed.seqs);
  });
}

/** The seqs of these ids as the built index knows them; null when it is not built. */
export function filterIndexSeqsOf(st: ClassState, ids: readonly string[]): number[] | null {
  const idx = indexes.built(st);
  if (!idx) return null;
  return ids.flatMap((id) => {
    const seq = idx.seqOfId.get(id);
    return seq === undefined ? [] : [seq];
  });
}

/** Forgets a class's index (its objects were reloaded wholesale): the next filtered search rebuilds it. */
export function filterIndexDropped(st: ClassState): void {
  indexes.drop(st);
}
