import type { HybridQuery, KeywordQuery, MoveObject, NearTextMove, SearchQuery } from "../../collections/collection-service.js";
import { CollectionError } from "../../collections/errors.js";
import { parseTargetBeacon } from "../../collections/references.js";
import { isUuid } from "../../collections/schema.js";

/*
 * GraphQL `Get` arguments of keyword, hybrid and sorted searches, read into a SearchQuery:
 *   bm25: {query, properties: ["title^2", …], searchOperator: {operator: And|Or, minimumOrTokensMatch}}
 *   hybrid: {query, alpha, vector, properties, fusionType: rankedFusion|relativeScoreFusion, targetVectors: [one],
 *            maxVectorDistance, bm25SearchOperator, searches: [{nearText: {concepts, moveTo, moveAwayFrom}} | {nearVector}]}
 *   sort: [{path: ["prop"], order: asc|desc}] (or one object), autocut: N
 *   nearText's moveTo / moveAwayFrom: {force: Float!, concepts: [String], objects: [{id, beacon}]}
 * Unknown fields and wrong types are errors (never ignored).
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const bad = (message: string) => new CollectionError(422, message);

function only(o: Record<string, unknown>, allowed: string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k) && o[k] !== undefined) throw bad(`${what}: field '${k}' is not supported by OpenBatch (supported: ${allowed.join(", ")})`);
}

function strings(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw bad(`${what} must be a list of strings`);
  return v as string[];
}

function searchOperator(v: unknown, what: string): Pick<KeywordQuery, "operator" | "minimumOrTokensMatch"> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw bad(`${what} must be an object`);
  only(v, ["operator", "minimumOrTokensMatch"], what);
  const out: Pick<KeywordQuery, "operator" | "minimumOrTokensMatch"> = {};
  if (v.operator !== undefined && v.operator !== null) {
    if (v.operator !== "And" && v.operator !== "Or") throw bad(`${what}.operator must be And or Or`);
    out.operator = v.operator;
  }
  if (v.minimumOrTokensMatch !== undefined && v.minimumOrTokensMatch !== null) {
    if (typeof v.minimumOrTokensMatch !== "number") throw bad(`${what}.minimumOrTokensMatch must be an integer`);
    out.minimumOrTokensMatch = v.minimumOrTokensMatch;
  }
  return out;
}

/** `bm25: {…}` → KeywordQuery. @throws CollectionError 422 for a missing query or unknown/wrong fields. */
export function parseBm25Arg(v: unknown): KeywordQuery {
  if (!isObject(v)) throw bad("bm25 must be an object");
  only(v, ["query", "properties", "searchOperator"], "bm25");
  if (typeof v.query !== "string") throw bad("bm25: query must be a string");
  return { query: v.query, properties: strings(v.properties, "bm25.properties"), ...searchOperator(v.searchOperator, "bm25.searchOperator") };
}

/** `hybrid: {…}` → HybridQuery and its target vector. @throws CollectionError 422 for bad fields. */
export function parseHybridArg(v: unknown): { hybrid: HybridQuery; targetVector?: string } {
  if (!isObject(v)) throw bad("hybrid must be an object");
  only(v, ["query", "alpha", "vector", "properties", "fusionType", "targetVectors", "maxVectorDistance", "bm25SearchOperator", "searches"], "hybrid");
  if (typeof v.query !== "string") throw bad("hybrid: query must be a string");
  const hybrid: HybridQuery = { query: v.query, properties: strings(v.properties, "hybrid.properties"), ...searchOperator(v.bm25SearchOperator, "hybrid.bm25SearchOperator") };
  if (v.alpha !== undefined && v.alpha !== null) {
    if (typeof v.alpha !== "number") throw bad("hybrid: alpha must be a number");
    hybrid.alpha = v.alpha;
  }
  if (v.vector !== undefined && v.vector !== null) {
    if (!Array.isArray(v.vector) || v.vector.length === 0 || !v.vector.every((x) => typeof x === "number")) throw bad("hybrid: vector must be a non-empty list of numbers");
    hybrid.vector = v.vector as number[];
  }
  if (v.fusionType !== undefined && v.fusionType !== null) {
    if (v.fusionType !== "rankedFusion" && v.fusionType !== "relativeScoreFusion") throw bad("hybrid: fusionType must be rankedFusion or relativeScoreFusion");
    hybrid.fusionType = v.fusionType;
  }
  if (v.maxVectorDistance !== undefined && v.maxVectorDistance !== null) {
    if (typeof v.maxVectorDistance !== "number") throw bad("hybrid: maxVectorDistance must be a number");
    hybrid.maxVectorDistance = v.maxVectorDistance;
  }
  const sub = hybridSubSearch(v.searches);
  if (sub?.vector) {
    if (hybrid.vector) throw bad("cannot combine nearVector and vector in hybrid search");
    hybrid.vector = sub.vector;
  }
  if (sub?.nearText) {
    if (hybrid.vector) throw bad("cannot combine nearText and query in hybrid search");
    hybrid.nearText = sub.nearText;
  }
  const targets = strings(v.targetVectors, "hybrid.targetVectors");
  if (targets && targets.length > 1) throw bad("hybrid: a search over several target vectors is not supported by OpenBatch: name one");
  return targets?.length ? { hybrid, targetVector: targets[0] } : { hybrid };
}

/**
 * Hybrid's `searches: [{nearText: {concepts, moveTo, moveAwayFrom}} | {nearVector: {vector}}]` (a lone object is a
 * one-element list): the vector part's own search, as Weaviate's ExtractHybridSearch reads its first entry.
 * @returns the sub-search's vector or nearText, or null without one.
 * @throws CollectionError 422 for several entries (Weaviate would read the first alone), both kinds in one, unknown
 * fields, a sub-search's distance / certainty / targetVectors (the hybrid's own maxVectorDistance and targetVectors
 * apply), a nearText without concepts, and a bad move (parseMoveArg).
 */
function hybridSubSearch(v: unknown): { vector?: number[]; nearText?: NonNullable<HybridQuery["nearText"]> } | null {
  if (v === undefined || v === null) return null;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return null;
  if (list.length > 1) throw bad(`hybrid: searches takes one sub-search ({nearText} or {nearVector}), got ${list.length}`);
  const entry = list[0];
  if (!isObject(entry)) throw bad("hybrid: searches must hold an object {nearText} or {nearVector}");
  only(entry, ["nearText", "nearVector"], "hybrid.searches");
  const given = (k: string) => entry[k] !== undefined && entry[k] !== null;
  if (given("nearText") && given("nearVector")) throw bad("cannot combine nearText and nearVector in hybrid search");
  const kind = given("nearText") ? "nearText" : given("nearVector") ? "nearVector" : null;
  if (!kind) return null;
  const o = entry[kind];
  if (!isObject(o)) throw bad(`hybrid.searches.${kind} must be an object`);
  for (const k of ["distance", "certainty", "targetVectors", "targets"]) {
    if (o[k] !== undefined && o[k] !== null) throw bad(`hybrid.searches.${kind}: '${k}' is not supported by OpenBatch: give the hybrid's maxVectorDistance / targetVectors`);
  }
  if (kind === "nearVector") {
    only(o, ["vector"], "hybrid.searches.nearVector");
    if (!Array.isArray(o.vector) || o.vector.length === 0 || !o.vector.every((x) => typeof x === "number")) throw bad("hybrid.searches.nearVector: vector must be a non-empty list of numbers");
    return { vector: o.vector as number[] };
  }
  only(o, ["concepts", "moveTo", "moveAwayFrom"], "hybrid.searches.nearText");
  const concepts = typeof o.concepts === "string" ? [o.concepts] : o.concepts;
  if (!Array.isArray(concepts) || concepts.length === 0 || !concepts.every((c) => typeof c === "string")) throw bad("hybrid.searches.nearText: concepts must be a non-empty list of strings");
  const moveTo = parseMoveArg(o.moveTo, "moveTo");
  const moveAwayFrom = parseMoveArg(o.moveAwayFrom, "moveAwayFrom");
  return { nearText: { concepts: concepts as string[], ...(moveTo ? { moveTo } : {}), ...(moveAwayFrom ? { moveAwayFrom } : {}) } };
}

/** `sort: [{path, order}]` → sort keys. @throws CollectionError 422 for bad entries. */
export function parseSortArg(v: unknown): NonNullable<SearchQuery["sort"]> {
  const list = Array.isArray(v) ? v : [v];
  return list.map((s) => {
    if (!isObject(s)) throw bad("sort: each entry must be an object {path, order}");
    only(s, ["path", "order"], "sort");
    const path = strings(s.path, "sort.path");
    if (!path || path.length === 0) throw bad("sort: path must name a property");
    const order = s.order ?? "asc";
    if (order !== "asc" && order !== "desc") throw bad("sort: order must be asc or desc");
    return { path, order };
  });
}

/**
 * `distance` / `certainty` of a `nearVector` / `nearText` / `nearObject` argument (`op` names it in messages).
 * @returns the ones given (numbers). @throws CollectionError 422 for a value that is not a number, and for both at
 * once, with Weaviate's message ("cannot provide distance and certainty"): one bounds the other's metric.
 */
export function parseThresholds(o: Record<string, unknown>, op: string): { distance?: number; certainty?: number } {
  const out: { distance?: number; certainty?: number } = {};
  for (const k of ["distance", "certainty"] as const) {
    if (o[k] === undefined || o[k] === null) continue;
    if (typeof o[k] !== "number") throw bad(`${op}: ${k} must be a number`);
    out[k] = o[k];
  }
  if (out.distance !== undefined && out.certainty !== undefined) throw bad("cannot provide distance and certainty");
  return out;
}

/**
 * nearText's `moveTo` / `moveAwayFrom` (`which`): `{force, concepts, objects: [{id} | {beacon}]}`, read as Weaviate's
 * input type reads it (a lone string or object is a one-element list; `force` is required). An object's beacon wins
 * over its id, as Weaviate's searcher takes it.
 * @returns the movement (force, concepts, objects by id and the class their beacon named), or undefined for null.
 * @throws CollectionError 422 naming the field for a missing force, unknown fields and wrong types, an object with
 * neither id nor beacon, an id that is not a uuid, a beacon that does not parse.
 */
export function parseMoveArg(v: unknown, which: "moveTo" | "moveAwayFrom"): NearTextMove | undefined {
  if (v === undefined || v === null) return undefined;
  const at = `nearText: In field "${which}"`;
  if (!isObject(v)) throw bad(`${at}: Expected an object {force, concepts, objects}, found ${JSON.stringify(v)}.`);
  for (const k of Object.keys(v)) if (!["force", "concepts", "objects"].includes(k)) throw bad(`${at}: In field "${k}": Unknown field.`);
  if (v.force === undefined || v.force === null) throw bad(`${at}: In field "force": Expected "Float!", found null.`);
  if (typeof v.force !== "number") throw bad(`${at}: In field "force": Expected type "Float", found ${JSON.stringify(v.force)}.`);
  const move: NearTextMove = { force: v.force };
  if (v.concepts !== undefined && v.concepts !== null) {
    const concepts = typeof v.concepts === "string" ? [v.concepts] : v.concepts;
    if (!Array.isArray(concepts) || !concepts.every((c) => typeof c === "string")) throw bad(`${at}: In field "concepts": Expected type "[String]", found ${JSON.stringify(v.concepts)}.`);
    move.concepts = concepts as string[];
  }
  if (v.objects !== undefined && v.objects !== null) {
    const list = Array.isArray(v.objects) ? v.objects : [v.objects];
    move.objects = list.map((o, i) => moveObject(o, `${at}: In field "objects" (${i})`));
  }
  return move;
}

/** One `{id}` / `{beacon}` of a move's objects. @throws CollectionError 422 (see parseMoveArg). */
function moveObject(o: unknown, at: string): MoveObject {
  if (!isObject(o)) throw bad(`${at}: Expected an object {id, beacon}, found ${JSON.stringify(o)}.`);
  for (const k of Object.keys(o)) if (k !== "id" && k !== "beacon") throw bad(`${at}: In field "${k}": Unknown field.`);
  for (const k of ["id", "beacon"] as const) if (o[k] !== undefined && o[k] !== null && typeof o[k] !== "string") throw bad(`${at}: In field "${k}": Expected type "String", found ${JSON.stringify(o[k])}.`);
  if (typeof o.beacon === "string") {
    const t = parseTargetBeacon(o.beacon);
    if ("error" in t) throw bad(`${at}: ${t.error}`);
    return { id: t.id, class: t.class };
  }
  if (typeof o.id !== "string") throw bad(`${at}: give the object's id or beacon`);
  if (!isUuid(o.id)) throw bad(`${at}: id '${o.id}' is not a valid uuid`);
  return { id: o.id.toLowerCase(), class: null };
}
