import type { StoredObject } from "../store/collection-store.js";
import type { CollectionContext, ClassState } from "./collection-context.js";
import type { ClassDef, PropertyDef } from "./schema.js";
import { filterIndexDropped, filterIndexRemoved, filterIndexSeqsOf, filterIndexWritten, type IndexedObject } from "./filter-index.js";
import { vectorCacheInvalidated } from "./flat-search.js";
import { ScannedIndexes } from "./scanned-index.js";

/*
 * The searchable inverted index of a class: per text property, term → postings (object seq, term frequency) and each
 * object's property length in tokens, as Weaviate's "searchable" buckets and property-length tracker keep them.
 *
 * Kept behind `InvertedIndex` so a store can serve it another way (a PostgreSQL table of postings); the one here is
 * in memory, built from the store by a scan on a class's first search (so after a restart too), then kept up per
 * object by the write paths, as the vector indexes are: batch-import.ts after each stored slice, object-ops.ts after
 * deletes, store-sync.ts for what other API servers on the same PostgreSQL wrote (and a rebuild where it rebuilds the
 * vector indexes). Writes stored while the build scan runs are queued and replayed after it (idempotent upserts).
 *
 * Why in memory and not SQLite FTS5: FTS5's bm25() fixes k1 = 1.2 / b = 0.75, tokenizes with its own tokenizers
 * (no Weaviate `word` / `field` / `trigram` equivalence), normalizes by the length of each column rather than Weaviate's
 * summed BM25F lengths, and weights columns inside each column's own saturation — so it cannot give Weaviate's scores, only candidates.
 * Measured on this machine (2 cores, Node 20; the 1,000 Jeopardy questions, 3 text properties, 8 queries of 1-4
 * words, top 10, one thread):
 *   in-memory postings + bm25.ts: build 51 ms, 0.26 ms per query, Weaviate's scores;
 *   FTS5 (better-sqlite3, unicode61, MATCH "a" OR "b" ORDER BY bm25() LIMIT 10): build 34 ms, 0.18 ms per query,
 *   and 0 of 8 top-10s equal to Weaviate's ranking;
 *   in memory at 50,000 objects: build 1.8 s, 3.8 ms per query, ≈ 90 MB heap for the process.
 * So FTS5 is not faster by enough to pay for re-scoring its candidates. Since then the scorer reads slots, lengths and
 * postings from typed arrays (bm25.ts): at 50,000 objects 2.3 ms → 0.3 ms per query (8 queries, top 10, one thread,
 * the machine loaded by other work; bench/bm25.ts "scorer alone").
 * Upkeep per write instead of a rebuild (bench/bm25.ts, 50,000 objects, the first `bm25` GraphQL query after a
 * one-object batch write, median of 5, same machine and day): rebuilt on the version change 5,637 ms (the event loop
 * held throughout); kept up per object 12.4 ms (an ordinary query). Ranking is unchanged (test/bm25.test.ts;
 * test/bm25-upkeep.test.ts compares with the reference scorer after every kind of write).
 */

/** Weaviate's tokenizations of text properties. */
export type TokenizationName = "word" | "lowercase" | "whitespace" | "field" | "trigram";

/** Weaviate's English stopword preset (`invertedIndexConfig.stopwords.preset: "en"`, the default). */
export const EN_STOPWORDS: readonly string[] = [
  "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
  "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/**
 * Splits text as a Weaviate tokenization does: `word` lower-cased runs of letters and digits; `lowercase` and
 * `whitespace` split on white space (lower-cased or not); `field` the whole trimmed value; `trigram` every three
 * consecutive letters/digits of the lower-cased text, other characters dropped.
 */
export function analyze(text: string, tokenization: TokenizationName | undefined): string[] {
  switch (tokenization ?? "word") {
    case "field": {
      const t = text.trim();
      return t ? [t] : [];
    }
    case "whitespace":
      return text.split(/\s+/u).filter(Boolean);
    case "lowercase":
      return text.toLowerCase().split(/\s+/u).filter(Boolean);
    case "trigram": {
      const chars = [...text.toLowerCase()].filter((c) => /[\p{L}\p{N}]/u.test(c));
      const out: string[] = [];
      for (let i = 0; i + 3 <= chars.length; i++) out.push(chars.slice(i, i + 3).join(""));
      return out;
    }
    default:
      return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  }
}

/**
 * The stopwords of a class: its preset (`en` default, `none`), plus `additions`, minus `removals`. Weaviate drops them
 * from `word`-tokenized BM25 queries only (they stay in the index and in property lengths).
 */
export function stopwordsOf(def: ClassDef): Set<string> {
  const cfg = (def.invertedIndexConfig?.stopwords ?? {}) as { preset?: string; additions?: string[] | null; removals?: string[] | null };
  const set = new Set(cfg.preset === "none" ? [] : EN_STOPWORDS);
  for (const w of cfg.additions ?? []) set.add(w.toLowerCase());
  for (const w of cfg.removals ?? []) set.delete(w.toLowerCase());
  return set;
}

/** `invertedIndexConfig.bm25` with Weaviate's defaults (k1 1.2, b 0.75). */
export function bm25ParamsOf(def: ClassDef): { k1: number; b: number } {
  const cfg = (def.invertedIndexConfig?.bm25 ?? {}) as { k1?: number; b?: number };
  return { k1: typeof cfg.k1 === "number" ? cfg.k1 : 1.2, b: typeof cfg.b === "number" ? cfg.b : 0.75 };
}

/** Whether a property has a searchable (BM25) index: text or text[] with `indexSearchable`. */
export function isSearchable(p: PropertyDef): boolean {
  return (p.dataType[0] === "text" || p.dataType[0] === "text[]") && p.indexSearchable !== false;
}

/**
 * One posting list: parallel arrays of the holding objects' slots (dense internal ids, see `InvertedIndex.seqOf`) and
 * the term's frequency in that object's property.
 */
export interface Postings {
  slots: Int32Array;
  tfs: Int32Array;
}

/**
 * What BM25 needs from an inverted index (the interface a store-backed index implements). Objects are numbered by
 * dense slots (0 ≤ slot < slotCount, reused after deletes) so a scorer can keep per-object state in typed arrays.
 */
export interface InvertedIndex {
  /** Objects in the class (BM25's N). */
  readonly docCount: number;
  /** One more than the highest slot in use. */
  readonly slotCount: number;
  /** Postings of `term` in `property` (empty when absent). */
  postings(property: string, term: string): Postings;
  /** Token counts of `property` by slot (0 where an object has none); read-only. */
  lengths(property: string): Int32Array;
  /** Mean token count of `property` over the objects that have it (Weaviate's property-length tracker mean). */
  meanLength(property: string): number;
  /** The object seq of a slot in use. */
  seqOf(slot: number): number;
  /** The slot of an object seq; undefined when the index does not hold it. */
  slotOf(seq: number): number | undefined;
}

const EMPTY: Postings = { slots: new Int32Array(0), tfs: new Int32Array(0) };

/** What the index keeps of one object: its id and, per searchable property, its distinct terms (null: no value). */
interface Forward {
  id: string;
  seq: number;
  terms: (string[] | null)[];
}

/**
 * The in-memory inverted index of one class (see the file comment), kept up per object: `upsert` indexes an object
 * (replacing what it held for that seq or id), `removeSeqs` / `removeIds` drop objects. Postings are slot → tf maps, so
 * a write touches only that object's terms; `postings()` hands out typed arrays built on first use after a change.
 */
export class MemoryInvertedIndex implements InvertedIndex {
  private readonly terms: Map<string, Map<number, number>>[];
  private readonly arrays: Map<string, Postings>[];
  private lens: Int32Array[];
  private readonly totals: { sum: number; n: number }[];
  private readonly byName = new Map<string, number>();
  /** By slot; undefined for a free slot. */
  private readonly forward: (Forward | undefined)[] = [];
  private readonly slotOfSeq = new Map<number, number>();
  private readonly slotOfId = new Map<string, number>();
  private readonly free: number[] = [];
  private count = 0;
  private capacity = 1024;

  constructor(private readonly props: PropertyDef[]) {
    props.forEach((p, i) => this.byName.set(p.name, i));
    this.terms = props.map(() => new Map());
    this.arrays = props.map(() => new Map());
    this.lens = props.map(() => new Int32Array(this.capacity));
    this.totals = props.map(() => ({ sum: 0, n: 0 }));
  }

  get docCount(): number {
    return this.count;
  }

  get slotCount(): number {
    return this.forward.length;
  }

  seqOf(slot: number): number {
    return this.forward[slot]!.seq;
  }

  slotOf(seq: number): number | undefined {
    return this.slotOfSeq.get(seq);
  }

  /** Indexes one object, replacing what the index held for its seq (an update) or its id (stored again under a new seq). */
  upsert(o: Pick<StoredObject, "seq" | "id" | "properties">): void {
    const old = this.slotOfId.get(o.id);
    if (old !== undefined && this.forward[old]!.seq !== o.seq) this.removeSlot(old);
    const same = this.slotOfSeq.get(o.seq);
    if (same !== undefined) this.removeSlot(same);
    const slot = this.free.pop() ?? this.forward.length;
    if (slot >= this.capacity) {
      this.capacity *= 2;
      this.lens = this.lens.map((l) => {
        const grown = new Int32Array(this.capacity);
        grown.set(l);
        return grown;
      });
    }
    const fwd: Forward = { id: o.id, seq: o.seq, terms: [] };
    this.props.forEach((p, i) => {
      const v = o.properties[p.name];
      if (v === undefined || v === null) return void fwd.terms.push(null);
      const texts = Array.isArray(v) ? v.map(String) : [String(v)];
      const tokens = texts.flatMap((t) => analyze(t, p.tokenization as TokenizationName | undefined));
      const counts = new Map<string, number>();
      for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
      const byTerm = this.terms[i]!;
      for (const [t, n] of counts) {
        let list = byTerm.get(t);
        if (!list) byTerm.set(t, (list = new Map()));
        list.set(slot, n);
        this.arrays[i]!.delete(t);
      }
      fwd.terms.push([...counts.keys()]);
      this.lens[i]![slot] = tokens.length;
      this.totals[i]!.sum += tokens.length;
      this.totals[i]!.n++;
    });
    this.forward[slot] = fwd;
    this.slotOfSeq.set(o.seq, slot);
    this.slotOfId.set(o.id, slot);
    this.count++;
  }

  /** Drops the objects with these seqs (unknown ones are skipped). */
  removeSeqs(seqs: Iterable<number>): void {
    for (const seq of seqs) {
      const slot = this.slotOfSeq.get(seq);
      if (slot !== undefined) this.removeSlot(slot);
    }
  }

  /** Drops the objects with these ids (unknown ones are skipped). */
  removeIds(ids: Iterable<string>): void {
    for (const id of ids) {
      const slot = this.slotOfId.get(id);
      if (slot !== undefined) this.removeSlot(slot);
    }
  }

  private removeSlot(slot: number): void {
    const fwd = this.forward[slot];
    if (!fwd) return;
    fwd.terms.forEach((terms, i) => {
      if (!terms) return;
      const byTerm = this.terms[i]!;
      for (const t of terms) {
        const list = byTerm.get(t);
        if (!list) continue;
        list.delete(slot);
        if (list.size === 0) byTerm.delete(t);
        this.arrays[i]!.delete(t);
      }
      this.totals[i]!.sum -= this.lens[i]![slot]!;
      this.totals[i]!.n--;
      this.lens[i]![slot] = 0;
    });
    this.forward[slot] = undefined;
    this.free.push(slot);
    this.count--;
    this.slotOfSeq.delete(fwd.seq);
    if (this.slotOfId.get(fwd.id) === slot) this.slotOfId.delete(fwd.id);
  }

  postings(property: string, term: string): Postings {
    const i = this.byName.get(property);
    if (i === undefined) return EMPTY;
    const cached = this.arrays[i]!.get(term);
    if (cached) return cached;
    const list = this.terms[i]!.get(term);
    if (!list) return EMPTY;
    const out: Postings = { slots: Int32Array.from(list.keys()), tfs: Int32Array.from(list.values()) };
    this.arrays[i]!.set(term, out);
    return out;
  }

  lengths(property: string): Int32Array {
    const i = this.byName.get(property);
    return i === undefined ? new Int32Array(this.forward.length) : this.lens[i]!;
  }

  meanLength(property: string): number {
    const i = this.byName.get(property);
    const t = i === undefined ? undefined : this.totals[i];
    return t && t.n > 0 ? t.sum / t.n : 0;
  }
}

const searchableOf = (def: ClassDef) => def.properties.filter(isSearchable);
const indexes = new ScannedIndexes<MemoryInvertedIndex>(
  (def) => JSON.stringify(searchableOf(def).map((p) => [p.name, p.tokenization ?? "word"])),
  (def) => new MemoryInvertedIndex(searchableOf(def)),
);

/**
 * The inverted index of a class: built by a scan of the stored objects on its first search (or after a change of its
 * searchable properties), then kept current by the write paths calling `invertedIndexWritten` / `invertedIndexRemoved`
 * (local writes in batch-import.ts and object-ops.ts; other servers' writes in store-sync.ts).
 * @throws Error when the store cannot be read.
 */
export function invertedIndexOf(ctx: CollectionContext, st: ClassState): Promise<InvertedIndex> {
  return indexes.of(ctx, st);
}

/*
 * The write hooks below are those of every in-memory index of a class's objects: this keyword index, the filterable
 * index (filter-index.ts) and the vector cache of filtered searches (flat-search.ts) all follow them.
 */

/**
 * Objects of the class just stored (inserted or replaced), with the seqs the store gave them, and their timestamps
 * when the writer has them. Call after the write.
 */
export function invertedIndexWritten(st: ClassState, objects: readonly IndexedObject[]): void {
  filterIndexWritten(st, objects);
  vectorCacheInvalidated(st, objects.map((o) => o.seq));
  if (objects.length) indexes.apply(st, (idx) => objects.forEach((o) => idx.upsert(o)));
}

/** Objects of the class just deleted, by id or by seq. Call after the delete. */
export function invertedIndexRemoved(st: ClassState, removed: { ids?: readonly string[]; seqs?: readonly number[] }): void {
  // Ids resolved before the filterable index forgets them; unknown ones empty the whole cache.
  const fromIds = removed.ids ? filterIndexSeqsOf(st, removed.ids) : [];
  vectorCacheInvalidated(st, fromIds === null ? null : [...fromIds, ...(removed.seqs ?? [])]);
  filterIndexRemoved(st, removed);
  indexes.apply(st, (idx) => {
    if (removed.ids) idx.removeIds(removed.ids);
    if (removed.seqs) idx.removeSeqs(removed.seqs);
  });
}

/** Forgets a class's index (its objects were reloaded wholesale): the next search rebuilds it. */
export function invertedIndexDropped(st: ClassState): void {
  filterIndexDropped(st);
  vectorCacheInvalidated(st, null);
  indexes.drop(st);
}
