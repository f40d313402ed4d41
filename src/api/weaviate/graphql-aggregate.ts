import type { AggregateField, AggregateQuery, Caller, CollectionService } from "../../collections/collection-service.js";
import type { ClassDef } from "../../collections/schema.js";
import { metricsOf } from "../../collections/aggregate.js";
import { parseHybridArg, parseMoveArg, parseThresholds } from "./search-args.js";
import { GraphQLError, keyOf, loc, nonNegativeInt, tenantArg, toJson, type Field } from "./graphql-parser.js";

/** `{ Aggregate { Class(…) { … } } }` of `POST /v1/graphql` (graphql.ts): validation of the selections and execution. */

/** Checks the selections of an Aggregate on class `def`. @throws GraphQLError for a property or metric it lacks. */
export function validateAggregateSelections(def: ClassDef, selections: Field[]): void {
  for (const s of selections) {
    if (s.name === "__typename") continue;
    if (s.name === "meta") {
      for (const m of s.selections ?? []) if (m.name !== "count" && m.name !== "__typename") throw new GraphQLError(`Cannot query field "${m.name}" on type "AggregateMetaObject".`, loc(m));
      continue;
    }
    if (s.name === "groupedBy") {
      for (const m of s.selections ?? []) if (m.name !== "value" && m.name !== "path" && m.name !== "__typename") throw new GraphQLError(`Cannot query field "${m.name}" on type "AggregateGroupedBy".`, loc(m));
      continue;
    }
    let metrics: string[];
    try {
      metrics = metricsOf(def, s.name).metrics;
    } catch {
      throw new GraphQLError(`Cannot query field "${s.name}" on type "Aggregate${def.class}".`, loc(s));
    }
    if (!s.selections) throw new GraphQLError(`Field "${s.name}" of type "Aggregate${def.class}${s.name.charAt(0).toUpperCase() + s.name.slice(1)}Obj" must have a sub selection.`, loc(s));
    for (const m of s.selections) {
      if (m.name === "__typename") continue;
      if (!metrics.includes(m.name)) throw new GraphQLError(`Cannot query field "${m.name}" on type "Aggregate${def.class}${s.name.charAt(0).toUpperCase() + s.name.slice(1)}Obj".`, loc(m));
      if (m.name === "topOccurrences") {
        for (const a of m.args.keys()) if (a !== "limit") throw new GraphQLError(`Unknown argument "${a}" on field "topOccurrences".`, loc(m));
        for (const t of m.selections ?? []) if (t.name !== "value" && t.name !== "occurs" && t.name !== "__typename") throw new GraphQLError(`Cannot query field "${t.name}" on type "TextPropertyAggregateTopOccurrences".`, loc(t));
      } else if (m.args.size) throw new GraphQLError(`Unknown argument "${[...m.args.keys()][0]}" on field "${m.name}".`, loc(m));
    }
  }
}

/** Runs one `Aggregate { Class(…) {…} }` field as `caller`: its rows (one per group), as selected. @throws GraphQLError, CollectionError. */
export async function runAggregate(service: CollectionService, caller: Caller, f: Field, vars: Record<string, unknown>): Promise<unknown[]> {
  const arg = (name: string) => (f.args.has(name) ? toJson(f.args.get(name)!, vars) : undefined);
  const fields: AggregateField[] = [];
  for (const s of f.selections!) {
    if (s.name === "__typename" || s.name === "meta" || s.name === "groupedBy") continue;
    const top = s.selections!.find((m) => m.name === "topOccurrences");
    const limit = top?.args.has("limit") ? nonNegativeInt(toJson(top.args.get("limit")!, vars), "limit", top) : undefined;
    fields.push({ property: s.name, metrics: s.selections!.filter((m) => m.name !== "__typename").map((m) => m.name), ...(limit !== undefined ? { topOccurrencesLimit: limit } : {}) });
  }
  const q: AggregateQuery = { class: f.name, fields };
  q.tenant = tenantArg(arg("tenant"));
  const where = arg("where");
  if (where !== undefined && where !== null) q.where = where;
  const groupBy = arg("groupBy");
  if (groupBy !== undefined && groupBy !== null) {
    const path = Array.isArray(groupBy) ? groupBy : [groupBy];
    if (path.length !== 1 || typeof path[0] !== "string") throw new GraphQLError("groupBy: give one property name, as [\"prop\"]");
    q.groupBy = path[0];
  }
  if (arg("limit") !== undefined && arg("limit") !== null) {
    // Weaviate takes limit as the number of groups; without groupBy it would be dropped, so it is refused (as gRPC does).
    if (q.groupBy === undefined) throw new GraphQLError("aggregate: limit (the number of groups) needs groupBy", loc(f));
    q.limit = nonNegativeInt(arg("limit"), "limit", f);
  }
  if (arg("objectLimit") !== undefined && arg("objectLimit") !== null) q.objectLimit = nonNegativeInt(arg("objectLimit"), "objectLimit", f);
  const near = ["nearVector", "nearText", "nearObject", "hybrid"].filter((n) => f.args.has(n));
  if (near.length > 1) throw new GraphQLError(`found more than one search operator (${near.join(", ")}): use one`);
  if (near.length) {
    const o = arg(near[0]!);
    if (typeof o !== "object" || o === null || Array.isArray(o)) throw new GraphQLError(`Argument "${near[0]}" must be an object.`, loc(f));
    const v = o as Record<string, unknown>;
    const search: NonNullable<AggregateQuery["search"]> = {};
    if (near[0] === "hybrid") {
      const h = parseHybridArg(v);
      search.hybrid = h.hybrid;
      if (h.targetVector) search.targetVector = h.targetVector;
    } else {
      const fields = near[0] === "nearText" ? ["concepts", "distance", "certainty", "targetVectors", "moveTo", "moveAwayFrom"] : ["vector", "id", "distance", "certainty", "targetVectors"];
      for (const k of Object.keys(v)) if (!fields.includes(k)) throw new GraphQLError(`${near[0]}: field '${k}' is not supported by OpenBatch in Aggregate`);
      const t = v.targetVectors;
      if (t !== undefined && t !== null) {
        if (!Array.isArray(t) || t.length !== 1 || typeof t[0] !== "string") throw new GraphQLError(`${near[0]}: targetVectors must name one vector (several at once are not supported by OpenBatch)`);
        search.targetVector = t[0];
      }
      if (near[0] === "nearVector") {
        if (!Array.isArray(v.vector) || !v.vector.every((x) => typeof x === "number")) throw new GraphQLError("nearVector: vector must be a non-empty list of numbers");
        search.vector = v.vector as number[];
      } else if (near[0] === "nearText") {
        const c = typeof v.concepts === "string" ? [v.concepts] : v.concepts;
        if (!Array.isArray(c) || !c.every((x) => typeof x === "string")) throw new GraphQLError("nearText: concepts must be a non-empty list of strings");
        search.concepts = c as string[];
        const moveTo = parseMoveArg(v.moveTo, "moveTo");
        const moveAwayFrom = parseMoveArg(v.moveAwayFrom, "moveAwayFrom");
        if (moveTo) search.moveTo = moveTo;
        if (moveAwayFrom) search.moveAwayFrom = moveAwayFrom;
      } else {
        if (typeof v.id !== "string") throw new GraphQLError("nearObject: give the object's id");
        search.nearObject = v.id;
      }
      Object.assign(search, parseThresholds(v, near[0]!));
    }
    q.search = search;
  }
  const rows = await service.aggregate(caller, q);
  return rows.map((r) => {
    const row: Record<string, unknown> = {};
    for (const s of f.selections!) {
      if (s.name === "__typename") row[keyOf(s)] = `Aggregate${f.name}`;
      else if (s.name === "meta") row[keyOf(s)] = Object.fromEntries((s.selections ?? []).map((m) => [keyOf(m), m.name === "count" ? r.count : "AggregateMetaObject"]));
      else if (s.name === "groupedBy") row[keyOf(s)] = r.groupedBy ? Object.fromEntries((s.selections ?? []).map((m) => [keyOf(m), m.name === "value" ? String(r.groupedBy!.value) : m.name === "path" ? r.groupedBy!.path : "AggregateGroupedBy"])) : null;
      else {
        const metrics = r.properties[s.name] ?? {};
        row[keyOf(s)] = Object.fromEntries(
          s.selections!.map((m) => {
            const v = metrics[m.name];
            if (m.name === "topOccurrences" && Array.isArray(v)) return [keyOf(m), v.map((t: Record<string, unknown>) => Object.fromEntries((m.selections ?? []).map((x) => [keyOf(x), t[x.name] ?? null])))];
            return [keyOf(m), v ?? null];
          }),
        );
      }
    }
    return row;
  });
}
