import { unprocessable } from "./errors.js";
import { analyze, bm25ParamsOf, isSearchable, stopwordsOf, type InvertedIndex, type Postings, type TokenizationName } from "./inverted-index.js";
import { normalizePropertyName, type ClassDef } from "./schema.js";

/*
 * BM25F keyword ranking as Weaviate computes it (adapters/repos/db/inverted/bm25_searcher.go, the WAND scorer):
 *   - the query is tokenized once per tokenization of the searched properties; `word` tokens lose the class's
 *     stopwords; a token repeated in the query counts that many times (its idf is multiplied);
 *   - per query term and object, over the searched properties that contain the term: frequency f = Σ tf·boost and
 *     length L = Σ property length (of those properties only);
 *   - idf = ln(1 + (N − n + 0.5) / (n + 0.5)), N objects in the class, n objects having the term in any of them
 *     (a `where` filter does not change n or N);
 *   - term score = idf · f / (f + k1·(1 − b + b·L / avgL)), avgL the mean over the searched properties of each one's
 *     mean length; the object's score is the sum over terms. (No (k1+1) factor: Weaviate leaves it out.)
 * Weaviate sums in float32; this sums in float64, so scores agree to ~1e-6 and only exact ties may order differently
 * (ties here: lower insertion order first).
 */

/** A keyword search: the query text, properties (`name` or `name^boost`; absent: every searchable one), operator. */
export interface Bm25Query {
  query: string;
  properties?: string[];
  /** `Or` (default): any token; `And`: every token. */
  operator?: "Or" | "And";
  /** With `Or`: the least number of distinct query tokens an object must contain (default 1). */
  minimumOrTokensMatch?: number;
}

/** An object's BM25F score, with Weaviate's explanation (`, BM25F_<term>_frequency:f, BM25F_<term>_propLength:L`). */
export interface Bm25Hit {
  seq: number;
  score: number;
  explain: string;
}

interface Term {
  text: string;
  idf: number;
  /** The objects holding the term (slots), with frequency and length summed over the searched properties holding it. */
  slots: Int32Array;
  f: Float64Array;
  L: Float64Array;
}

/**
 * Per-object scratch of a scorer, indexed by slot, reused from query to query (a search runs synchronously, so one set
 * per index serves them all). `stamp` marks which entries belong to the current query or term, so nothing is cleared.
 */
interface Scratch {
  stamp: Int32Array;
  at: Int32Array;
  score: Float64Array;
  matched: Int32Array;
  allowed: Int32Array;
  clock: number;
}
const scratches = new WeakMap<InvertedIndex, Scratch>();

function scratchOf(index: InvertedIndex): Scratch {
  const n = index.slotCount;
  let s = scratches.get(index);
  if (!s || s.stamp.length < n || s.clock > 2 ** 30) {
    const size = Math.max(1024, n * 2);
    s = { stamp: new Int32Array(size), at: new Int32Array(size), score: new Float64Array(size), matched: new Int32Array(size), allowed: new Int32Array(size), clock: 0 };
    scratches.set(index, s);
  }
  return s;
}

/** A term's postings merged over a group of searched properties, kept while the postings they came from are current. */
interface Merged {
  sources: Postings[];
  slots: Int32Array;
  f: Float64Array;
  L: Float64Array;
}
const mergedCaches = new WeakMap<InvertedIndex, Map<string, Merged>>();
/** Merged term lists kept per index; past this many the cache starts over (queries are open-ended). */
const MERGED_MAX = 4096;

/**
 * The objects holding `text` in any of `group`'s properties, with f = Σ tf·boost and L = Σ length over the ones that
 * hold it (the per-document BM25F inputs), merged in the order the objects first appear.
 */
function mergedPostings(index: InvertedIndex, group: { name: string; boost: number }[], text: string, sc: Scratch): Merged {
  let cache = mergedCaches.get(index);
  if (!cache) mergedCaches.set(index, (cache = new Map()));
  const key = `${group.map((p) => `${p.name}^${p.boost}`).join(",")}\u0000${text}`;
  const sources = group.map((p) => index.postings(p.name, text));
  const hit = cache.get(key);
  if (hit && hit.sources.every((x, i) => x === sources[i])) return hit;
  let out: Merged;
  if (group.length === 1) {
    const list = sources[0]!, lens = index.lengths(group[0]!.name), boost = group[0]!.boost;
    const n = list.slots.length;
    const f = new Float64Array(n), L = new Float64Array(n);
    for (let i = 0; i < n; i++) (f[i] = list.tfs[i]! * boost), (L[i] = lens[list.slots[i]!]!);
    out = { sources, slots: list.slots, f, L };
  } else {
    // stamp/at index the merge by slot.
    const mark = ++sc.clock;
    const slots: number[] = [], f: number[] = [], L: number[] = [];
    group.forEach((p, g) => {
      const list = sources[g]!, lens = index.lengths(p.name);
      for (let i = 0; i < list.slots.length; i++) {
        const slot = list.slots[i]!;
        if (sc.stamp[slot] === mark) {
          const j = sc.at[slot]!;
          f[j]! += list.tfs[i]! * p.boost;
          L[j]! += lens[slot]!;
        } else {
          sc.stamp[slot] = mark;
          sc.at[slot] = slots.length;
          slots.push(slot);
          f.push(list.tfs[i]! * p.boost);
          L.push(lens[slot]!);
        }
      }
    });
    out = { sources, slots: Int32Array.from(slots), f: Float64Array.from(f), L: Float64Array.from(L) };
  }
  if (cache.size >= MERGED_MAX) cache.clear();
  cache.set(key, out);
  return out;
}

/**
 * The properties searched with their boosts.
 * @throws CollectionError 422 for an unknown property, one without a searchable index, or a bad boost.
 */
export function searchedProperties(def: ClassDef, properties: string[] | undefined): { name: string; boost: number; tokenization: TokenizationName }[] {
  if (!properties || properties.length === 0) {
    return def.properties.filter(isSearchable).map((p) => ({ name: p.name, boost: 1, tokenization: (p.tokenization ?? "word") as TokenizationName }));
  }
  return properties.map((spec) => {
    const [rawName, boostText, ...extra] = spec.split("^");
    const name = normalizePropertyName(rawName!.trim());
    const boost = boostText === undefined ? 1 : Number(boostText);
    if (extra.length || !Number.isFinite(boost) || boost < 0) throw unprocessable(`bm25: invalid property boost ${JSON.stringify(spec)}: use name^number`);
    const prop = def.properties.find((p) => p.name === name);
    if (!prop) throw unprocessable(`no such prop with name '${name}' found in class '${def.class}' in the schema. Check your schema files for which properties in this class are available`);
    if (!isSearchable(prop)) throw unprocessable(`Property '${name}' does not have a searchable inverted index (only text and text[] properties with indexSearchable can be searched with bm25)`);
    return { name, boost, tokenization: (prop.tokenization ?? "word") as TokenizationName };
  });
}

/**
 * Ranks the objects of a class for a keyword query: postings and property lengths read from typed arrays, scores
 * summed per object in scratch arrays, the best `limit` picked with a bounded heap, and only those explained.
 * @param allowed seqs a `where` filter lets through (null: all).
 * @param limit most hits returned (best first); Infinity for all.
 * @throws CollectionError 422 for bad properties or options.
 */
export function bm25Search(index: InvertedIndex, def: ClassDef, q: Bm25Query, allowed: ReadonlySet<number> | null, limit: number): Bm25Hit[] {
  const props = searchedProperties(def, q.properties);
  const { k1, b } = bm25ParamsOf(def);
  const stop = stopwordsOf(def);
  const min = q.minimumOrTokensMatch;
  if (min !== undefined && (!Number.isInteger(min) || min < 0)) throw unprocessable("bm25: minimumOrTokensMatch must be an integer >= 0");
  if (props.length === 0) return [];
  const N = index.docCount;
  const avgLen = props.reduce((s, p) => s + index.meanLength(p.name), 0) / props.length;
  const sc = scratchOf(index);

  const terms: Term[] = [];
  for (const tokenization of [...new Set(props.map((p) => p.tokenization))]) {
    const group = props.filter((p) => p.tokenization === tokenization);
    let tokens = analyze(q.query, tokenization);
    if (tokenization === "word") tokens = tokens.filter((t) => !stop.has(t));
    const dup = new Map<string, number>();
    for (const t of tokens) dup.set(t, (dup.get(t) ?? 0) + 1);
    for (const [text, times] of dup) {
      const merged = mergedPostings(index, group, text, sc);
      const t: Term = { text, idf: 0, ...merged };
      const n = t.slots.length;
      t.idf = Math.log(1 + (N - n + 0.5) / (n + 0.5)) * times;
      terms.push(t);
    }
  }

  // A `where` filter as a mark per slot.
  let allowMark = 0;
  if (allowed) {
    allowMark = ++sc.clock;
    for (const seq of allowed) {
      const slot = index.slotOf(seq);
      if (slot !== undefined) sc.allowed[slot] = allowMark;
    }
  }
  const need = q.operator === "And" ? terms.length : Math.max(1, min ?? 1);
  const mark = ++sc.clock;
  const hits: number[] = [];
  const norm = avgLen || 1;
  const { stamp, score, matched } = sc;
  for (const t of terms) {
    const { slots, f: fs, L: Ls, idf } = t;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if (allowMark && sc.allowed[slot] !== allowMark) continue;
      const f = fs[i]!;
      const s = idf * (f / (f + k1 * (1 - b + (b * Ls[i]!) / norm)));
      if (stamp[slot] === mark) (score[slot]! += s), matched[slot]!++;
      else {
        stamp[slot] = mark;
        score[slot] = s;
        matched[slot] = 1;
        hits.push(slot);
      }
    }
  }
  const top = bestSlots(hits, limit, need, score, matched, index);
  // Each chosen hit's per-term frequency and length, for explainScore (marked by slot, one pass per term).
  const chosen = ++sc.clock;
  top.forEach((slot, j) => ((stamp[slot] = chosen), (sc.at[slot] = j)));
  const explain = top.map(() => "");
  for (const t of terms) {
    for (let i = 0; i < t.slots.length; i++) {
      const slot = t.slots[i]!;
      if (stamp[slot] === chosen) explain[sc.at[slot]!] += `, BM25F_${t.text}_frequency:${t.f[i]}, BM25F_${t.text}_propLength:${t.L[i]}`;
    }
  }
  return top.map((slot, j) => ({ seq: index.seqOf(slot), score: score[slot]!, explain: explain[j]! }));
}

/**
 * The candidate slots matching at least `need` terms, best first (higher score; ties: lower seq), at most `limit`: a
 * bounded binary heap with the worst kept on top, so most candidates cost one comparison with it.
 */
function bestSlots(candidates: readonly number[], limit: number, need: number, score: Float64Array, matched: Int32Array, index: InvertedIndex): number[] {
  const better = (x: number, y: number) => score[x]! > score[y]! || (score[x] === score[y] && index.seqOf(x) < index.seqOf(y));
  const order = (x: number, y: number) => (better(x, y) ? -1 : better(y, x) ? 1 : 0);
  if (!Number.isFinite(limit) || limit >= candidates.length) return candidates.filter((j) => matched[j]! >= need).sort(order);
  if (limit <= 0) return [];
  const heap: number[] = [];
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j]!, heap[i]!]);
  for (const j of candidates) {
    if (matched[j]! < need) continue;
    if (heap.length < limit) {
      heap.push(j);
      for (let i = heap.length - 1; i > 0; ) {
        const p = (i - 1) >> 1;
        if (!better(heap[p]!, heap[i]!)) break;
        swap(i, p);
        i = p;
      }
      continue;
    }
    const worst = heap[0]!;
    // The common case: not better than the worst kept.
    if (score[j]! < score[worst]! || (score[j] === score[worst] && !better(j, worst))) continue;
    heap[0] = j;
    for (let i = 0; ; ) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < heap.length && better(heap[w]!, heap[l]!)) w = l;
      if (r < heap.length && better(heap[w]!, heap[r]!)) w = r;
      if (w === i) break;
      swap(i, w);
      i = w;
    }
  }
  return heap.sort(order);
}
