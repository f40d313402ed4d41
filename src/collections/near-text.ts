import type { CollectionContext, ClassState } from "./collection-context.js";
import type { NearTextMove } from "./collection-types.js";
import { CollectionError, unprocessable } from "./errors.js";
import { normalizeClassName } from "./schema.js";
import { parentClass } from "./tenants.js";
import { DEFAULT_VECTOR, type VectorSlot } from "./vector-config.js";
import { embedForSlot } from "./vectorizers.js";

/*
 * The query vector of a nearText search, as Weaviate's text2vec modules build it (usecases/modulecomponents/arguments/
 * nearText searcher.go and searcher_movements.go):
 * - the concepts are embedded one by one and averaged (libvectorizer.CombineVectors); embedding the joined text would
 *   rank differently;
 * - moveTo (force f, 0..1): s·(1 − f/2) + t·f/2, where t is the mean of the concepts' vector (one entry, itself the
 *   mean of its concepts) and each object's vector;
 * - moveAwayFrom (force f >= 0): s + (f/2)·(s − t), applied after moveTo, to the moved vector;
 * - a move with force 0 moves nothing; one with a force but neither concepts nor objects is refused, as Weaviate's
 *   NearTextParams.Validate refuses it.
 * A negative force, which Weaviate skips without a word, is refused with its movement's own message.
 */

/** Which movement, as Weaviate's messages name it. */
type Direction = "moveTo" | "moveAwayFrom";

/**
 * Checks a movement before anything is embedded or read.
 * @throws CollectionError 422 with Weaviate's messages: a force that is not a number or out of range (`movement: force
 * must be between 0 and 1: got 1.500000`, `movement (moveAwayFrom): force must be 0 or positive: got -1.000000`), a
 * force without concepts or objects (`'nearText.moveTo' parameter needs to have defined either 'concepts' or 'objects'
 * fields`), an object of another class than the one searched.
 */
export function checkMove(move: NearTextMove | undefined, dir: Direction, cls: string): void {
  if (!move) return;
  const f = move.force;
  const shown = typeof f === "number" ? Math.fround(f).toFixed(6) : JSON.stringify(f);
  if (typeof f !== "number" || !Number.isFinite(f)) throw unprocessable(`nearText: ${dir}.force must be a number, got ${shown}`);
  if (f > 0 && !move.concepts?.length && !move.objects?.length) throw unprocessable(`'nearText.${dir}' parameter needs to have defined either 'concepts' or 'objects' fields`);
  if (dir === "moveTo" && (f < 0 || f > 1)) throw unprocessable(`movement: force must be between 0 and 1: got ${shown}`);
  if (dir === "moveAwayFrom" && f < 0) throw unprocessable(`movement (moveAwayFrom): force must be 0 or positive: got ${shown}`);
  const own = normalizeClassName(parentClass(cls));
  for (const o of move.objects ?? []) {
    if (o.class !== null && normalizeClassName(o.class) !== own) {
      throw unprocessable(`nearText: ${dir}: the beacon of object ${o.id} names class ${o.class}, but the objects of a move are read from the class searched, ${own}`);
    }
  }
}

/**
 * The query vector of a nearText search over `slot` of class `st`: the concepts' mean, moved toward `moveTo` and then
 * away from `moveAwayFrom` (either may be absent).
 * @returns a vector of the slot's length (Float32).
 * @throws CollectionError 422 for a slot without vectorizer, no concepts, a bad movement (checkMove), an object of a
 * move that is missing or lacks the vector searched (`vectorize move to: vector not found …`); 500 when the
 * vectorizer fails.
 */
export async function nearTextVector(ctx: CollectionContext, st: ClassState, slot: VectorSlot, concepts: string[], moveTo?: NearTextMove, moveAwayFrom?: NearTextMove): Promise<Float32Array> {
  const cls = st.def.class;
  if (slot.module === "none") throw unprocessable(`nearText: vector ${slot.name} of class ${cls} has no vectorizer (it was created with vectorizer "none"): search it with nearVector`);
  if (concepts.length === 0) throw unprocessable("nearText: give at least one concept");
  checkMove(moveTo, "moveTo", cls);
  checkMove(moveAwayFrom, "moveAwayFrom", cls);
  let query = await embedConcepts(ctx, slot, concepts);
  if (moveTo && moveTo.force > 0) {
    const t = await moveTarget(ctx, st, slot, moveTo, "move to");
    const w = moveTo.force / 2;
    query = combine(query, t, (s, x) => s * (1 - w) + x * w);
  }
  if (moveAwayFrom && moveAwayFrom.force > 0) {
    const t = await moveTarget(ctx, st, slot, moveAwayFrom, "move away from");
    const w = moveAwayFrom.force / 2;
    query = combine(query, t, (s, x) => s + w * (s - x));
  }
  return Float32Array.from(query);
}

/** The concepts' vector: each embedded alone, then their mean. @throws CollectionError 500 when the vectorizer fails. */
async function embedConcepts(ctx: CollectionContext, slot: VectorSlot, concepts: string[]): Promise<number[]> {
  try {
    return mean(await embedForSlot(ctx.options.embedder, slot, concepts));
  } catch (err) {
    throw new CollectionError(500, `nearText: vectorizing the concepts with ${slot.module} failed: ${(err as Error).message}`);
  }
}

/** Where a move points: the mean of its concepts' vector (one entry) and each of its objects' vectors. */
async function moveTarget(ctx: CollectionContext, st: ClassState, slot: VectorSlot, move: NearTextMove, what: string): Promise<number[]> {
  const cls = st.def.class;
  const parts: number[][] = [];
  if (move.concepts?.length) parts.push(await embedConcepts(ctx, slot, move.concepts));
  for (const { id } of move.objects ?? []) {
    const o = await ctx.options.store.getObject(cls, id.toLowerCase(), true);
    if (!o) throw unprocessable(`vectorize ${what}: vector not found: no object ${id} in class ${parentClass(cls)}`);
    const v = slot.name === DEFAULT_VECTOR ? (o.vector ?? o.vectors?.[slot.name]) : o.vectors?.[slot.name];
    if (!v) throw unprocessable(`vectorize ${what}: vector not found: object ${id} of class ${parentClass(cls)} has no vector ${slot.name}`);
    parts.push(Array.from(v));
  }
  return mean(parts);
}

/** The element-wise mean of equally long vectors (one or more). */
function mean(vectors: ArrayLike<number>[]): number[] {
  const out = new Array<number>(vectors[0]!.length).fill(0);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i]! += v[i]!;
  return out.map((x) => x / vectors.length);
}

/** `f(s[i], t[i])` for each element. @throws CollectionError 422 when the lengths differ (Weaviate's movement message). */
function combine(s: number[], t: number[], f: (s: number, t: number) => number): number[] {
  if (s.length !== t.length) throw unprocessable(`movement: vector lengths don't match: got ${s.length} and ${t.length}`);
  return s.map((x, i) => f(x, t[i]!));
}
