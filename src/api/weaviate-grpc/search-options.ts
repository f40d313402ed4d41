import type { SearchQuery } from "../../collections/collection-service.js";
import { CollectionError } from "../../collections/errors.js";
import { decodeMove } from "./near-text-move.js";

/*
 * The gRPC Search options of keyword, hybrid and sorted searches (weaviate.proto BM25, Hybrid, SortBy, autocut), read
 * into a SearchQuery. What OpenBatch does not serve is refused by name (UNIMPLEMENTED), never dropped.
 */

/** An option of Weaviate's gRPC Search that OpenBatch does not implement (the server answers UNIMPLEMENTED). */
export class UnimplementedSearchOption extends Error {}

interface OperatorMsg {
  operator?: number;
  minimumOrTokensMatch?: number;
}
interface VectorsMsg {
  name?: string;
  vectorBytes?: Buffer;
  type?: number;
}
/** The decoded messages read here. */
export interface SearchOptionsMsg {
  autocut?: number;
  sortBy?: { ascending?: boolean; path?: string[] }[];
  bm25Search?: { query?: string; properties?: string[]; searchOperator?: OperatorMsg };
  hybridSearch?: {
    query?: string;
    properties?: string[];
    vector?: number[];
    alpha?: number;
    fusionType?: number;
    vectorBytes?: Buffer;
    targetVectors?: string[];
    nearText?: { query?: string[]; certainty?: number; distance?: number; moveTo?: Buffer; moveAway?: Buffer; targetVectors?: string[]; targets?: unknown; selection?: Buffer };
    nearVector?: { vectorBytes?: Buffer; vector?: number[]; vectors?: VectorsMsg[]; distance?: number; certainty?: number; vectorPerTarget?: Record<string, Buffer>; vectorForTargets?: unknown[] };
    targets?: { targetVectors?: string[]; weightsForTargets?: unknown[] };
    bm25SearchOperator?: OperatorMsg;
    alphaParam?: number;
    useAlphaParam?: boolean;
    selection?: Buffer;
    vectorDistance?: number;
    vectors?: VectorsMsg[];
  };
}

const bad = (message: string) => new CollectionError(422, message);

function floats(bytes: Buffer | undefined): number[] | null {
  if (!bytes || bytes.length === 0) return null;
  if (bytes.length % 4 !== 0) throw bad(`vector bytes: length ${bytes.length} is not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

function operatorOf(o: OperatorMsg | undefined): Pick<NonNullable<SearchQuery["bm25"]>, "operator" | "minimumOrTokensMatch"> {
  if (!o) return {};
  const out: Pick<NonNullable<SearchQuery["bm25"]>, "operator" | "minimumOrTokensMatch"> = {};
  if (o.operator === 2) out.operator = "And";
  else if (o.operator === 1) out.operator = "Or";
  else if (o.operator) throw bad(`bm25: unknown search operator ${o.operator}`);
  if (o.minimumOrTokensMatch !== undefined) out.minimumOrTokensMatch = o.minimumOrTokensMatch;
  return out;
}

/** The 3.14 client's listOfVectors: a SINGLE-typed entry holding a 2-byte dimension header and the vectors. */
const isListOfVectors = (v: VectorsMsg) => v.type !== 2 && v.vectorBytes !== undefined && v.vectorBytes.length % 4 === 2;

/** The one vector given in `fields` ([name, vector or null]); several that differ are refused (none wins silently). */
function agreeing(what: string, fields: [string, number[] | null][]): number[] | null {
  const given = fields.filter((f): f is [string, number[]] => f[1] !== null);
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.fround(x) === Math.fround(b[i]!));
  if (given.some(([, v]) => !same(v, given[0]![1]))) throw bad(`${what}: ${given.map(([f]) => f).join(" and ")} give different query vectors: give one`);
  return given[0]?.[1] ?? null;
}

/** The one vector of a `vectors` list (several or multi-vectors are refused). */
function oneVector(list: VectorsMsg[] | undefined): { vector: number[]; name?: string } | null {
  if (!list || list.length === 0) return null;
  if (list.length > 1) throw new UnimplementedSearchOption("hybrid: several query vectors (multi-target search) are not supported by OpenBatch");
  if (list[0]!.type === 2) throw new UnimplementedSearchOption("hybrid: multi-vector queries are not supported by OpenBatch");
  const v = floats(list[0]!.vectorBytes);
  return v ? { vector: v, ...(list[0]!.name && list[0]!.name !== "default" ? { name: list[0]!.name } : {}) } : null;
}

/**
 * Reads `bm25_search`, `hybrid_search`, `sort_by` and `autocut` into `q`.
 * Hybrid's nearText sub-search (`vector: {query, moveTo, moveAway}` in the client) is its vector part: its concepts
 * and movements (near-text-move.ts).
 * @throws UnimplementedSearchOption for selection, several target vectors or weights, several vectors for one target
 * (listOfVectors), distance/certainty of a sub-search; CollectionError 422 for bad values, a query vector given in
 * several fields that differ, a vector together with a nearVector or nearText sub-search and both sub-searches
 * (Weaviate's `cannot combine nearVector and vector in hybrid search`, `cannot combine nearText and query in hybrid
 * search`, `cannot combine nearText and nearVector in hybrid search`); GrpcInputError for a move's bad uuid.
 */
export function applySearchOptions(req: SearchOptionsMsg, q: SearchQuery): void {
  if (req.autocut) q.autocut = req.autocut;
  if (req.sortBy && req.sortBy.length) q.sort = req.sortBy.map((s) => ({ path: s.path ?? [], order: s.ascending ? "asc" : "desc" }));
  if (req.bm25Search) {
    const b = req.bm25Search;
    q.bm25 = { query: b.query ?? "", properties: b.properties?.length ? b.properties : undefined, ...operatorOf(b.searchOperator) };
  }
  if (req.hybridSearch) {
    const h = req.hybridSearch;
    const nt = h.nearText;
    if (nt && (nt.distance !== undefined || nt.certainty !== undefined)) throw new UnimplementedSearchOption("hybrid: distance/certainty of the nearText query are not supported by OpenBatch: use maxVectorDistance");
    if (nt && ((nt.targetVectors ?? []).length || nt.targets)) throw bad("hybrid: name the target vectors on the hybrid search, not on its nearText sub-search");
    if (nt?.selection && nt.selection.length) throw new UnimplementedSearchOption("hybrid: diversity selection (MMR) is not supported by OpenBatch");
    if (nt && h.nearVector) throw bad("cannot combine nearText and nearVector in hybrid search");
    if (h.selection && h.selection.length) throw new UnimplementedSearchOption("hybrid: diversity selection (MMR) is not supported by OpenBatch");
    if (h.targets?.weightsForTargets?.length) throw new UnimplementedSearchOption("hybrid: weights for target vectors are not supported by OpenBatch");
    const targets = [...new Set([...(h.targetVectors ?? []), ...(h.targets?.targetVectors ?? [])])];
    if (targets.length > 1) throw new UnimplementedSearchOption(`hybrid: a search over several target vectors (${targets.join(", ")}) is not supported by OpenBatch: name one`);
    const nv = h.nearVector;
    const lists = [...(h.vectors ?? []), ...(nv?.vectors ?? []), ...((nv?.vectorForTargets ?? []) as { vectors?: VectorsMsg[] }[]).flatMap((t) => t.vectors ?? [])];
    if (lists.some(isListOfVectors)) throw new UnimplementedSearchOption("hybrid: several query vectors for one target (listOfVectors) are not supported by OpenBatch: give one vector per target");
    if (nv && (Object.keys(nv.vectorPerTarget ?? {}).length || (nv.vectorForTargets ?? []).length)) throw new UnimplementedSearchOption("hybrid: a vector per target vector is not supported by OpenBatch");
    if (nv && (nv.distance !== undefined || nv.certainty !== undefined)) throw new UnimplementedSearchOption("hybrid: distance/certainty of the vector query are not supported by OpenBatch: use maxVectorDistance");
    const topList = oneVector(h.vectors);
    const subList = oneVector(nv?.vectors);
    const top = agreeing("hybrid", [["vector_bytes", floats(h.vectorBytes)], ["vector", h.vector?.length ? h.vector : null], ["vectors", topList?.vector ?? null]]);
    // Weaviate's parse_search_request.go: the query's own vector and a nearVector / nearText sub-search exclude each other.
    if (top && nv) throw bad("cannot combine nearVector and vector in hybrid search");
    if (top && nt) throw bad("cannot combine nearText and query in hybrid search");
    const sub = nv ? agreeing("hybrid nearVector", [["vector_bytes", floats(nv.vectorBytes)], ["vector", nv.vector?.length ? nv.vector : null], ["vectors", subList?.vector ?? null]]) : null;
    const fromList = topList ?? subList;
    const vector = top ?? sub;
    if (h.fusionType !== undefined && h.fusionType !== 0 && h.fusionType !== 1 && h.fusionType !== 2) throw bad(`hybrid: unknown fusion type ${h.fusionType}`);
    // proto3 drops a zero alpha: absent `alpha` is 0 unless the client sends alpha_param.
    const alpha = h.useAlphaParam ? (h.alphaParam ?? 0) : (h.alpha ?? 0);
    q.hybrid = {
      query: h.query ?? "",
      properties: h.properties?.length ? h.properties : undefined,
      alpha,
      fusionType: h.fusionType === 1 ? "rankedFusion" : "relativeScoreFusion",
      ...operatorOf(h.bm25SearchOperator),
      ...(vector ? { vector } : {}),
      ...(h.vectorDistance !== undefined ? { maxVectorDistance: h.vectorDistance } : {}),
      ...(nt ? { nearText: nearTextOf(nt) } : {}),
    };
    const target = targets[0] ?? fromList?.name;
    if (target) q.targetVector = target;
  }
}

/** Hybrid's nearText sub-search → HybridQuery.nearText: its concepts and movements. */
function nearTextOf(nt: NonNullable<NonNullable<SearchOptionsMsg["hybridSearch"]>["nearText"]>): NonNullable<SearchQuery["hybrid"]>["nearText"] {
  const moveTo = decodeMove(nt.moveTo, "moveTo");
  const moveAwayFrom = decodeMove(nt.moveAway, "moveAway");
  return { concepts: nt.query ?? [], ...(moveTo ? { moveTo } : {}), ...(moveAwayFrom ? { moveAwayFrom } : {}) };
}
