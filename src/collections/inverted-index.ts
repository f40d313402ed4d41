import type { StoredObject } from "../store/collection-store.js";
import type { CollectionContext, ClassState } from "./collection-context.js";
import type { ClassDef, PropertyDef } from "./schema.js";

/*
 * The searchable inverted index of a class: per text property, term → postings (object seq, term frequency) and each
 * object's property length in tokens, as Weaviate's "searchable" buckets and property-length tracker keep them.
 *
 * Kept behind `InvertedIndex` so a store can serve it another way (a PostgreSQL table of postings); the one here is
 * in memory, built from the store by a scan and rebuilt when the class's store version changes (every object write or
 * delete bumps it), so it never answers from stale data, including after a restart or a write by another process.
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
 * So FTS5 is not faster by enough to pay for re-scoring its candidates. The cost here is the rebuild after writes:
 * O(objects) on the first search after a write; incremental upkeep (hooks in the write path) is the next step.
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

/** One posting list: parallel arrays of object seqs (ascending) and the term's frequency in that object's property. */
export interface Postings {
  seqs: number[];
  tfs: number[];
}

/** What BM25 needs from an inverted index (the interface a store-backed index implements). */
export interface InvertedIndex {
  /** Objects in the class (BM25's N). */
  readonly docCount: number;
  /** Postings of `term` in `property` (empty when absent). */
  postings(property: string, term: string): Postings;
  /** Tokens of `property` in object `seq` (0 when it has none). */
  length(property: string, seq: number): number;
  /** Mean token count of `property` over the objects that have it (Weaviate's property-length tracker mean). */
  meanLength(property: string): number;
}

const EMPTY: Postings = { seqs: [], tfs: [] };

/** The in-memory inverted index of one class (see the file comment). */
export class MemoryInvertedIndex implements InvertedIndex {
  private readonly terms = new Map<string, Map<string, Postings>>();
  private readonly lengths = new Map<string, Map<number, number>>();
  private readonly totals = new Map<string, { sum: number; n: number }>();
  docCount = 0;

  constructor(private readonly props: PropertyDef[]) {
    for (const p of props) {
      this.terms.set(p.name, new Map());
      this.lengths.set(p.name, new Map());
      this.totals.set(p.name, { sum: 0, n: 0 });
    }
  }

  /** Indexes one object; objects must come in ascending seq order (postings stay sorted). */
  add(o: Pick<StoredObject, "seq" | "properties">): void {
    this.docCount++;
    for (const p of this.props) {
      const v = o.properties[p.name];
      if (v === undefined || v === null) continue;
      const texts = Array.isArray(v) ? v.map(String) : [String(v)];
      const tokens = texts.flatMap((t) => analyze(t, p.tokenization as TokenizationName | undefined));
      const counts = new Map<string, number>();
      for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
      const byTerm = this.terms.get(p.name)!;
      for (const [t, n] of counts) {
        let list = byTerm.get(t);
        if (!list) byTerm.set(t, (list = { seqs: [], tfs: [] }));
        list.seqs.push(o.seq);
        list.tfs.push(n);
      }
      this.lengths.get(p.name)!.set(o.seq, tokens.length);
      const tot = this.totals.get(p.name)!;
      tot.sum += tokens.length;
      tot.n++;
    }
  }

  postings(property: string, term: string): Postings {
    return this.terms.get(property)?.get(term) ?? EMPTY;
  }

  length(property: string, seq: number): number {
    return this.lengths.get(property)?.get(seq) ?? 0;
  }

  meanLength(property: string): number {
    const t = this.totals.get(property);
    return t && t.n > 0 ? t.sum / t.n : 0;
  }
}

interface Cached {
  version: number;
  /** The searchable properties it was built for (a schema change rebuilds). */
  key: string;
  index: Promise<MemoryInvertedIndex>;
}
const caches = new WeakMap<CollectionContext, Map<string, Cached>>();

/**
 * The inverted index of a class, current with the store: the cached one while the class's store version is the one
 * it was built at, else rebuilt by a scan of the stored objects.
 */
export async function invertedIndexOf(ctx: CollectionContext, st: ClassState): Promise<InvertedIndex> {
  let cache = caches.get(ctx);
  if (!cache) caches.set(ctx, (cache = new Map()));
  const cls = st.def.class;
  const version = (await ctx.options.store.listClasses()).find((c) => c.name === cls)?.version ?? 0;
  const props = st.def.properties.filter(isSearchable);
  const key = JSON.stringify(props.map((p) => [p.name, p.tokenization ?? "word"]));
  const hit = cache.get(cls);
  if (hit && hit.version === version && hit.key === key) return hit.index;
  const index = (async () => {
    const idx = new MemoryInvertedIndex(props);
    await ctx.scan(st, null, (o) => (idx.add(o), true));
    return idx;
  })();
  cache.set(cls, { version, key, index });
  try {
    return await index;
  } catch (err) {
    if (cache.get(cls)?.index === index) cache.delete(cls);
    throw err;
  }
}
