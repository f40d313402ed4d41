import type { HybridQuery, KeywordQuery, SearchQuery } from "../../collections/collection-service.js";
import { CollectionError } from "../../collections/errors.js";

/*
 * GraphQL `Get` arguments of keyword, hybrid and sorted searches, read into a SearchQuery:
 *   bm25: {query, properties: ["title^2", …], searchOperator: {operator: And|Or, minimumOrTokensMatch}}
 *   hybrid: {query, alpha, vector, properties, fusionType: rankedFusion|relativeScoreFusion, targetVectors: [one],
 *            maxVectorDistance, bm25SearchOperator}
 *   sort: [{path: ["prop"], order: asc|desc}] (or one object), autocut: N
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
  only(v, ["query", "alpha", "vector", "properties", "fusionType", "targetVectors", "maxVectorDistance", "bm25SearchOperator"], "hybrid");
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
  const targets = strings(v.targetVectors, "hybrid.targetVectors");
  if (targets && targets.length > 1) throw bad("hybrid: a search over several target vectors is not supported by OpenBatch: name one");
  return targets?.length ? { hybrid, targetVector: targets[0] } : { hybrid };
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
