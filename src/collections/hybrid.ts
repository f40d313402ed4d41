import { unprocessable } from "./errors.js";

/*
 * Hybrid search fusion as Weaviate explains it (docs "Hybrid search", fusion algorithms):
 *   - rankedFusion: each result set contributes weight / (60 + rank), rank 0-based (reciprocal rank fusion), the
 *     vector set weighted alpha and the keyword set 1 − alpha;
 *   - relativeScoreFusion (the default since Weaviate 1.24): each set's scores are min-max normalized to [0, 1]
 *     (BM25 scores as they are, vector distances inverted: the nearest is 1), then weighted the same way and summed; a
 *     set whose scores are all equal normalizes them to 1.
 * An object found by one search only gets that search's part. Ties: the order of the keyword set, then the vector set.
 */

/** The fusion algorithms of Weaviate's hybrid search. */
export type FusionType = "rankedFusion" | "relativeScoreFusion";

/** A result of one of the two searches: BM25 score (higher is better) or vector distance (lower is better). */
export interface SubHit {
  seq: number;
  value: number;
}

/** A fused hit: its hybrid score, its vector distance when the vector search found it, and how the score came about. */
export interface FusedHit {
  seq: number;
  score: number;
  distance: number | null;
  explain: string;
}

/** Parses Weaviate's fusion names (GraphQL enums, gRPC enum numbers 1/2). @throws CollectionError 422 otherwise. */
export function fusionTypeOf(v: unknown): FusionType {
  if (v === undefined || v === null || v === 0) return "relativeScoreFusion";
  if (v === "rankedFusion" || v === 1) return "rankedFusion";
  if (v === "relativeScoreFusion" || v === 2) return "relativeScoreFusion";
  throw unprocessable(`hybrid: unknown fusionType ${JSON.stringify(v)}: use rankedFusion or relativeScoreFusion`);
}

/**
 * Fuses a keyword result set (best first) and a vector result set (nearest first).
 * @param alpha weight of the vector search, 0..1 (0: keyword only, 1: vector only).
 */
export function fuse(keyword: SubHit[], vector: SubHit[], alpha: number, fusion: FusionType): FusedHit[] {
  const out = new Map<number, FusedHit & { order: number }>();
  let order = 0;
  const add = (seq: number, part: number, distance: number | null, what: string) => {
    const cur = out.get(seq);
    if (cur) {
      cur.score += part;
      cur.explain += ` ${what}`;
      if (distance !== null) cur.distance = distance;
    } else out.set(seq, { seq, score: part, distance, explain: what, order: order++ });
  };
  const sets: [string, SubHit[], number, boolean][] = [
    ["keyword,bm25", keyword, 1 - alpha, true],
    ["vector,nearVector", vector, alpha, false],
  ];
  for (const [name, hits, weight, higherIsBetter] of sets) {
    if (weight === 0) continue;
    if (fusion === "rankedFusion") {
      hits.forEach((h, rank) => add(h.seq, weight / (60 + rank), higherIsBetter ? null : h.value, `(Result Set ${name}) Document ${h.seq}: original score ${h.value}, rank ${rank + 1}, contributed ${weight / (60 + rank)}.`));
    } else {
      const values = hits.map((h) => h.value);
      const lo = Math.min(...values);
      const hi = Math.max(...values);
      for (const h of hits) {
        const norm = hi === lo ? 1 : higherIsBetter ? (h.value - lo) / (hi - lo) : (hi - h.value) / (hi - lo);
        add(h.seq, weight * norm, higherIsBetter ? null : h.value, `(Result Set ${name}) Document ${h.seq}: original score ${h.value}, normalized score: ${norm}, contributed ${weight * norm}.`);
      }
    }
  }
  return [...out.values()].sort((a, b) => b.score - a.score || a.order - b.order).map(({ order: _o, ...h }) => h);
}

/**
 * Weaviate's autocut: the result count after the `cutOff`-th jump in the (score or distance) curve, found as the
 * `cutOff`-th local maximum of the normalized curve minus the diagonal. Returns how many results to keep.
 */
export function autocut(values: number[], cutOff: number): number {
  const n = values.length;
  if (n <= 1 || cutOff <= 0) return n;
  const first = values[0]!;
  const last = values[n - 1]!;
  if (first === last) return n;
  const diff = values.map((y, i) => (y - last) / (first - last) - i / (n - 1));
  let extrema = 0;
  for (let i = 1; i < n - 1; i++) {
    if (diff[i]! > diff[i - 1]! && diff[i]! > diff[i + 1]!) {
      extrema++;
      if (extrema >= cutOff) return i;
    }
  }
  return n;
}
