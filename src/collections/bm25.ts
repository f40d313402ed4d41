import { unprocessable } from "./errors.js";
import { analyze, bm25ParamsOf, isSearchable, stopwordsOf, type InvertedIndex, type TokenizationName } from "./inverted-index.js";
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
  /** The objects holding the term, with frequency and length summed over the searched properties holding it. */
  seqs: number[];
  f: number[];
  L: number[];
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
 * Ranks the objects of a class for a keyword query.
 * @param allowed seqs a `where` filter lets through (null: all).
 * @param limit most hits returned (best first); Infinity for all.
 * @throws CollectionError 422 for bad properties or options.
 */
export function bm25Search(index: InvertedIndex, def: ClassDef, q: Bm25Query, allowed: Set<number> | null, limit: number): Bm25Hit[] {
  const props = searchedProperties(def, q.properties);
  const { k1, b } = bm25ParamsOf(def);
  const stop = stopwordsOf(def);
  const min = q.minimumOrTokensMatch;
  if (min !== undefined && (!Number.isInteger(min) || min < 0)) throw unprocessable("bm25: minimumOrTokensMatch must be an integer >= 0");
  if (props.length === 0) return [];
  const N = index.docCount;
  const avgLen = props.reduce((s, p) => s + index.meanLength(p.name), 0) / props.length;

  const terms: Term[] = [];
  for (const tokenization of [...new Set(props.map((p) => p.tokenization))]) {
    const group = props.filter((p) => p.tokenization === tokenization);
    let tokens = analyze(q.query, tokenization);
    if (tokenization === "word") tokens = tokens.filter((t) => !stop.has(t));
    const dup = new Map<string, number>();
    for (const t of tokens) dup.set(t, (dup.get(t) ?? 0) + 1);
    for (const [text, times] of dup) {
      const seqs: number[] = [], f: number[] = [], L: number[] = [];
      // Parallel arrays, merged by seq only when several properties are searched (one property: no map at all).
      const at = group.length > 1 ? new Map<number, number>() : null;
      for (const p of group) {
        const list = index.postings(p.name, text);
        for (let i = 0; i < list.seqs.length; i++) {
          const seq = list.seqs[i]!;
          const len = index.length(p.name, seq);
          const j = at?.get(seq);
          if (j !== undefined) (f[j]! += list.tfs[i]! * p.boost), (L[j]! += len);
          else {
            at?.set(seq, seqs.length);
            seqs.push(seq);
            f.push(list.tfs[i]! * p.boost);
            L.push(len);
          }
        }
      }
      const n = seqs.length;
      terms.push({ text, idf: Math.log(1 + (N - n + 0.5) / (n + 0.5)) * times, seqs, f, L });
    }
  }

  const need = q.operator === "And" ? terms.length : Math.max(1, min ?? 1);
  const slot = new Map<number, number>();
  const hitSeqs: number[] = [], score: number[] = [], matched: number[] = [];
  const norm = avgLen || 1;
  for (const t of terms) {
    for (let i = 0; i < t.seqs.length; i++) {
      const seq = t.seqs[i]!;
      if (allowed && !allowed.has(seq)) continue;
      const f = t.f[i]!;
      const s = t.idf * (f / (f + k1 * (1 - b + (b * t.L[i]!) / norm)));
      const j = slot.get(seq);
      if (j !== undefined) (score[j]! += s), matched[j]!++;
      else {
        slot.set(seq, hitSeqs.length);
        hitSeqs.push(seq);
        score.push(s);
        matched.push(1);
      }
    }
  }
  // Best first (ties: lower seq first); the top `limit` picked with a bounded heap instead of sorting every hit.
  const better = (x: number, y: number) => score[x]! > score[y]! || (score[x] === score[y] && hitSeqs[x]! < hitSeqs[y]!);
  const top = topK(hitSeqs.length, limit, (j) => matched[j]! >= need, better);
  const chosen = new Set(top.map((j) => hitSeqs[j]!));
  // Each chosen hit's per-term frequency and length, for explainScore.
  const detail = terms.map((t) => {
    const m = new Map<number, [number, number]>();
    for (let i = 0; i < t.seqs.length; i++) if (chosen.has(t.seqs[i]!)) m.set(t.seqs[i]!, [t.f[i]!, t.L[i]!]);
    return m;
  });
  return top.map((j) => {
    const seq = hitSeqs[j]!;
    return {
      seq,
      score: score[j]!,
      explain: terms
        .map((t, k) => [t, detail[k]!.get(seq)] as const)
        .filter(([, d]) => d !== undefined)
        .map(([t, d]) => `, BM25F_${t.text}_frequency:${d![0]}, BM25F_${t.text}_propLength:${d![1]}`)
        .join(""),
    };
  });
}

/** The indexes 0..n-1 passing `keep`, best first by `better`, at most `limit` (a bounded binary heap, worst on top). */
function topK(n: number, limit: number, keep: (j: number) => boolean, better: (x: number, y: number) => boolean): number[] {
  if (!Number.isFinite(limit) || limit >= n) {
    const all: number[] = [];
    for (let j = 0; j < n; j++) if (keep(j)) all.push(j);
    return all.sort((x, y) => (better(x, y) ? -1 : better(y, x) ? 1 : 0));
  }
  if (limit <= 0) return [];
  const heap: number[] = [];
  const worse = (x: number, y: number) => better(y, x);
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!worse(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < heap.length && worse(heap[l]!, heap[w]!)) w = l;
      if (r < heap.length && worse(heap[r]!, heap[w]!)) w = r;
      if (w === i) return;
      [heap[i], heap[w]] = [heap[w]!, heap[i]!];
      i = w;
    }
  };
  for (let j = 0; j < n; j++) {
    if (!keep(j)) continue;
    if (heap.length < limit) (heap.push(j), up(heap.length - 1));
    else if (better(j, heap[0]!)) (heap[0] = j), down(0);
  }
  return heap.sort((x, y) => (better(x, y) ? -1 : better(y, x) ? 1 : 0));
}
