import type { Caller, CollectionService, ReferencedObject, SearchQuery, SearchResult } from "../../collections/collection-service.js";
import { isReferenceType, vectorSlots, type ClassDef } from "../../collections/schema.js";
import { isComplexType } from "../../collections/complex-types.js";
import { checkGroupBy } from "../../collections/group-by.js";
import { complexSelectionError, projectComplex } from "./graphql-complex.js";
import { parseBm25Arg, parseHybridArg, parseMoveArg, parseSortArg, parseThresholds } from "./search-args.js";
import { parseTargetsArg, splitHybridTargets } from "./multi-target-args.js";
import { applyTargets, resolveTargets, type TargetsInput } from "../../collections/multi-target.js";
import { groupedEntries, groupSelectionError, parseGroupByArg } from "./graphql-group-by.js";
import { GraphQLError, keyOf, loc, nonNegativeInt, tenantArg, toJson, type Field } from "./graphql-parser.js";
import { classLookup, referencePlan, renderReferenceField, validateReferenceSelection, type ClassLookup, type ReferencePlan } from "./graphql-references.js";

/** `{ Get { Class(…) { … } } }` of `POST /v1/graphql` (graphql.ts): validation of the selections and execution. */

/** Weaviate's default and largest page of results. */
const DEFAULT_LIMIT = 10;
const MAX_RESULTS = 10_000;

const ADDITIONAL = new Set(["id", "distance", "certainty", "vector", "vectors", "creationTimeUnix", "lastUpdateTimeUnix", "score", "explainScore", "group", "isConsistent"]);
/** The arguments a Get class field accepts. */
export const GET_ARGS = new Set(["nearVector", "nearText", "nearObject", "where", "limit", "offset", "after", "bm25", "hybrid", "sort", "autocut", "tenant", "groupBy", "consistencyLevel"]);
/** Weaviate's ConsistencyLevelEnum: one replica (OpenBatch is one node) meets each of them. */
const CONSISTENCY_LEVELS = new Set(["ONE", "QUORUM", "ALL"]);

/**
 * Checks the selections of a Get on class `def`; with `classOf`, the selections of referenced classes too
 * (graphql-references.ts). @throws GraphQLError for a field the class lacks or cannot serve.
 */
export function validateGetSelections(def: ClassDef, selections: Field[], classOf?: ClassLookup): void {
  for (const s of selections) {
    if (s.name === "__typename") continue;
    if (s.name === "_additional") {
      if (!s.selections) throw new GraphQLError(`Field "_additional" of type "${def.class}AdditionalProperties" must have a sub selection.`, loc(s));
      for (const a of s.selections) if (!ADDITIONAL.has(a.name)) throw new GraphQLError(`Cannot query field "${a.name}" on type "${def.class}AdditionalProperties".`, loc(a));
      // `group { … hits { … } }` of a grouped Get (graphql-group-by.ts).
      for (const a of s.selections) {
        if (a.name !== "group") continue;
        const e = groupSelectionError(def.class, a);
        if (e) throw new GraphQLError(e.message, loc(e.field as Field));
        const hits = a.selections!.find((h) => h.name === "hits");
        if (hits) validateGetSelections(def, hits.selections!, classOf);
      }
      // `vectors { <name> … }`: the named vectors asked for, each one of the class's.
      for (const a of s.selections) {
        if (a.name !== "vectors") continue;
        if (!a.selections) throw new GraphQLError(`Field "vectors" of type "${def.class}AdditionalVectors" must have a sub selection.`, loc(a));
        const names = vectorSlots(def).map((v) => v.name);
        for (const v of a.selections) if (v.name !== "__typename" && !names.includes(v.name)) throw new GraphQLError(`Cannot query field "${v.name}" on type "${def.class}AdditionalVectors".`, loc(v));
      }
      continue;
    }
    const prop = def.properties.find((p) => p.name === s.name);
    if (!prop) throw new GraphQLError(`Cannot query field "${s.name}" on type "${def.class}".`, loc(s));
    if (isReferenceType(prop.dataType)) {
      if (!s.selections) throw new GraphQLError(`Field "${s.name}" of type "[${def.class}${s.name.charAt(0).toUpperCase() + s.name.slice(1)}Obj]" must have a sub selection.`, loc(s));
      validateReferenceSelection(def, prop, s, classOf, (d, sel) => validateGetSelections(d, sel, classOf));
      continue;
    }
    if (isComplexType(prop.dataType[0])) {
      const err = complexSelectionError(def.class, prop, s);
      if (err) throw new GraphQLError(err.message, loc(err.field as Field));
      continue;
    }
    if (s.selections) throw new GraphQLError(`Field "${s.name}" must not have a selection since type "${prop.dataType[0]}" has no subfields.`, loc(s));
  }
}

/** Runs one `Get { Class(…) {…} }` field as `caller`: its hits, rendered as selected. @throws GraphQLError, CollectionError. */
export async function runGet(service: CollectionService, caller: Caller, f: Field, vars: Record<string, unknown>): Promise<unknown[]> {
  const arg = (name: string) => (f.args.has(name) ? toJson(f.args.get(name)!, vars) : undefined);
  const limit = arg("limit") === undefined || arg("limit") === null ? DEFAULT_LIMIT : nonNegativeInt(arg("limit"), "limit", f);
  const offset = arg("offset") === undefined || arg("offset") === null ? 0 : nonNegativeInt(arg("offset"), "offset", f);
  if (limit + offset > MAX_RESULTS) throw new GraphQLError(`query maximum results exceeded: offset + limit must be at most ${MAX_RESULTS}`);
  const near = ["nearVector", "nearText", "nearObject", "bm25", "hybrid"].filter((n) => f.args.has(n));
  if (near.length > 1) throw new GraphQLError(`found more than one search operator (${near.join(", ")}): use one`);
  const q: SearchQuery = { class: f.name, limit, offset };
  const where = arg("where");
  if (where !== undefined && where !== null) q.where = where;
  const after = arg("after");
  if (typeof after === "string") {
    if (near.length || where !== undefined) throw new GraphQLError("the cursor (after) cannot be combined with a search or a where filter");
    q.after = after;
  }
  const thresholds = (o: Record<string, unknown>, op: string) => Object.assign(q, parseThresholds(o, op));
  consistencyLevelArg(f, vars);
  // Fields a near* argument may carry; any other (autocorrect, …) is refused, never ignored.
  const NEAR_FIELDS: Record<string, string[]> = { nearVector: ["vector", "vectorPerTarget", "distance", "certainty", "targetVectors", "targets"], nearText: ["concepts", "moveTo", "moveAwayFrom", "distance", "certainty", "targetVectors", "targets"], nearObject: ["id", "beacon", "distance", "certainty", "targetVectors", "targets"] };
  // The target vectors named, one or several (multi-target-args.ts); applied once the search is read.
  let targetsIn: TargetsInput | null = null;
  const objectArg = (name: string) => {
    const v = arg(name);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new GraphQLError(`Argument "${name}" must be an object.`, loc(f));
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (o[k] !== undefined && o[k] !== null && !NEAR_FIELDS[name]!.includes(k)) throw new GraphQLError(`${name}: '${k}' is not supported by OpenBatch`);
    targetsIn = parseTargetsArg(o, name);
    return o;
  };
  if (near[0] === "nearVector") {
    const o = objectArg("nearVector");
    if ((o.vector === undefined || o.vector === null) === (o.vectorPerTarget === undefined || o.vectorPerTarget === null)) throw new GraphQLError("nearVector: vector or vectorPerTarget is required field");
    if (o.vector !== undefined && o.vector !== null) {
      if (!Array.isArray(o.vector) || o.vector.length === 0 || !o.vector.every((x) => typeof x === "number")) throw new GraphQLError("nearVector: vector must be a non-empty list of numbers");
      q.vector = o.vector as number[];
    }
    thresholds(o, "nearVector");
  } else if (near[0] === "nearText") {
    const o = objectArg("nearText");
    const concepts = typeof o.concepts === "string" ? [o.concepts] : o.concepts;
    if (!Array.isArray(concepts) || concepts.length === 0 || !concepts.every((x) => typeof x === "string")) throw new GraphQLError("nearText: concepts must be a non-empty list of strings");
    q.concepts = concepts as string[];
    const moveTo = parseMoveArg(o.moveTo, "moveTo");
    const moveAwayFrom = parseMoveArg(o.moveAwayFrom, "moveAwayFrom");
    if (moveTo) q.moveTo = moveTo;
    if (moveAwayFrom) q.moveAwayFrom = moveAwayFrom;
    thresholds(o, "nearText");
  } else if (near[0] === "nearObject") {
    const o = objectArg("nearObject");
    const fromBeacon = typeof o.beacon === "string" ? o.beacon.split("/").at(-1) : undefined;
    if (typeof o.id === "string" && fromBeacon !== undefined && o.id.toLowerCase() !== fromBeacon.toLowerCase()) throw new GraphQLError("nearObject: id and beacon name different objects: give one");
    const id = typeof o.id === "string" ? o.id : fromBeacon;
    if (!id) throw new GraphQLError("nearObject: give the object's id (or beacon)");
    q.nearObject = id;
    thresholds(o, "nearObject");
  }
  // Keyword, hybrid and sorted searches (search-args.ts).
  if (near[0] === "bm25") q.bm25 = parseBm25Arg(arg("bm25"));
  else if (near[0] === "hybrid") {
    const split = splitHybridTargets(arg("hybrid"));
    const h = parseHybridArg(split.rest);
    q.hybrid = h.hybrid;
    if (h.targetVector) q.targetVector = h.targetVector;
    targetsIn = split.targets;
  }
  if (targetsIn) applyTargets(q, resolveTargets(targetsIn));
  if (arg("sort") !== undefined && arg("sort") !== null) q.sort = parseSortArg(arg("sort"));
  if (arg("autocut") !== undefined && arg("autocut") !== null) q.autocut = nonNegativeInt(arg("autocut"), "autocut", f);
  const wantsVector = f.selections!.some((s) => s.name === "_additional" && s.selections!.some((a) => a.name === "vector" || a.name === "vectors"));
  q.tenant = tenantArg(arg("tenant"));
  q.includeVector = wantsVector;
  // groupBy (graphql-group-by.ts): as Weaviate, the `limit` nearest hits (default 10) go into groups, one entry each.
  const groupBy = arg("groupBy") === undefined || arg("groupBy") === null ? null : parseGroupByArg(arg("groupBy"));
  let groupProperty = "";
  if (groupBy) {
    if (!(q.vector || q.concepts || q.nearObject || q.hybrid || q.bm25 || q.targets)) throw new GraphQLError("groupBy needs a search (nearVector, nearText, nearObject, hybrid, bm25)");
    if (offset) throw new GraphQLError("groupBy cannot be combined with offset");
    groupProperty = checkGroupBy(service.getClass(caller, f.name)!, groupBy.property, groupBy.groups, groupBy.objectsPerGroup);
  }
  // References selected (graphql-references.ts): checked through every class they reach before the search.
  const classOf = classLookup(service, caller);
  const def = f.selections!.some((s) => s.selections && s.name !== "_additional") || groupBy ? classOf(f.name) : null;
  if (def) validateGetSelections(def, f.selections!, classOf);
  const plan = referencePlan(def, f.selections!, classOf);
  if (plan.requests.length) await service.resolveReferences(caller, f.name, [], plan.requests, q.tenant);
  const results = await service.search(caller, q);
  const resolved = plan.requests.length ? await service.resolveReferences(caller, f.name, results.map((r) => r.id), plan.requests, q.tenant) : new Map<string, ReferencedObject[][]>();
  const rc: RenderContext = { plan, classOf };
  const hit = (r: SearchResult, sel: Field[]) => renderHit(r, sel, f.name, def, resolved.get(r.id) ?? [], rc);
  if (groupBy) return groupedEntries(results, groupBy, groupProperty, f.selections!, (h, sel) => hit(h, sel as Field[])).map((r) => hit(r, f.selections!));
  return results.map((r) => hit(r, f.selections!));
}

/**
 * Checks Get's `consistencyLevel` (an enum literal, or a variable holding its name). Every level is met by OpenBatch's
 * one replica, so a valid one needs nothing more. @throws GraphQLError in graphql-go's words for another value.
 */
function consistencyLevelArg(f: Field, vars: Record<string, unknown>): void {
  const v = f.args.get("consistencyLevel");
  if (v === undefined || v.kind === "null") return;
  const value = toJson(v, vars);
  const valid = (v.kind === "enum" || v.kind === "variable") && typeof value === "string" && CONSISTENCY_LEVELS.has(value);
  if (valid || (v.kind === "variable" && value === null)) return;
  const shown = v.kind === "enum" ? String(value) : JSON.stringify(value);
  throw new GraphQLError(`Argument "consistencyLevel" has invalid value ${shown}. Expected type "ConsistencyLevelEnum", found ${shown}.`, loc(f));
}

/** What rendering references needs: which request each fragment made, and the classes' definitions. */
interface RenderContext {
  plan: ReferencePlan;
  classOf: ClassLookup;
}

/** A referenced object in the shape of a hit (no distance or certainty: it was not searched). */
const asHit = (o: ReferencedObject): SearchResult => ({ ...o, distance: null, certainty: null });

function renderHit(r: SearchResult, selections: Field[], cls: string, def: ClassDef | null, refs: ReferencedObject[][], rc: RenderContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of selections) {
    if (s.name === "__typename") out[keyOf(s)] = cls;
    else if (s.name === "_additional") {
      const add: Record<string, unknown> = {};
      for (const a of s.selections!) {
        const v =
          a.name === "id" ? r.id
          : a.name === "distance" ? r.distance
          : a.name === "certainty" ? r.certainty
          : a.name === "vector" ? r.vector
          : a.name === "vectors" ? Object.fromEntries(a.selections!.map((v) => [keyOf(v), v.name === "__typename" ? `${cls}AdditionalVectors` : (r.vectors?.[v.name] ?? null)]))
          : a.name === "score" ? (r.score === undefined ? null : String(r.score))
          : a.name === "explainScore" ? (r.explainScore ?? null)
          : a.name === "group" ? ((r as SearchResult & { group?: unknown }).group ?? null)
          : a.name === "isConsistent" ? true
          : a.name === "creationTimeUnix" ? String(r.creationTimeUnix)
          : String(r.lastUpdateTimeUnix);
        add[keyOf(a)] = v ?? null;
      }
      out[keyOf(s)] = add;
    } else if (s.selections) {
      const prop = def?.properties.find((p) => p.name === s.name);
      if (prop && isReferenceType(prop.dataType)) {
        out[keyOf(s)] = renderReferenceField(s, refs, rc.plan, rc.classOf, (o, sel, d, nested) => renderHit(asHit(o), sel, o.class, d, nested, rc));
        continue;
      }
      // geoCoordinates / phoneNumber / object: cut to the selected subfields (graphql-complex.ts).
      out[keyOf(s)] = prop ? projectComplex(prop, r.properties[s.name], s) : (r.properties[s.name] ?? null);
    } else out[keyOf(s)] = r.properties[s.name] ?? null;
  }
  return out;
}
