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
  /** seq → [frequency, length] summed over the properties holding the term. */
  docs: Map<number, [number, number]>;
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
      const docs = new Map<number, [number, number]>();
      for (const p of group) {
        const list = index.postings(p.name, text);
        for (let i = 0; i < list.seqs.length; i++) {
          const seq = list.seqs[i]!;
          const len = index.length(p.name, seq);
          const cur = docs.get(seq);
          if (cur) (cur[0] += list.tfs[i]! * p.boost), (cur[1] += len);
          else docs.set(seq, [list.tfs[i]! * p.boost, len]);
        }
      }
      const n = docs.size;
      terms.push({ text, idf: Math.log(1 + (N - n + 0.5) / (n + 0.5)) * times, docs });
    }
  }

  const need = q.operator === "And" ? terms.length : Math.max(1, min ?? 1);
  const scores = new Map<number, { score: number; matched: number }>();
  for (const t of terms) {
    for (const [seq, [f, L]] of t.docs) {
      if (allowed && !allowed.has(seq)) continue;
      const s = t.idf * (f / (f + k1 * (1 - b + (b * L) / (avgLen || 1))));
      const cur = scores.get(seq);
      if (cur) (cur.score += s), cur.matched++;
      else scores.set(seq, { score: s, matched: 1 });
    }
  }
  const hits = [...scores].filter(([, v]) => v.matched >= need).map(([seq, v]) => ({ seq, score: v.score }));
  hits.sort((x, y) => y.score - x.score || x.seq - y.seq);
  return hits.slice(0, limit).map((h) => ({
    ...h,
    explain: terms
      .filter((t) => t.docs.has(h.seq))
      .map((t) => `, BM25F_${t.text}_frequency:${t.docs.get(h.seq)![0]}, BM25F_${t.text}_propLength:${t.docs.get(h.seq)![1]}`)
      .join(""),
  }));
}
