import type { AggregateField, AggregateQuery, AggregateRow, Caller, CollectionService, SearchQuery } from "../../collections/collection-service.js";
import { metricsOf } from "../../collections/aggregate.js";
import { normalizePropertyName, type ClassDef } from "../../collections/schema.js";
import { applySearchOptions, type SearchOptionsMsg } from "./search-options.js";
import { toWhere } from "./conversion.js";
import { GrpcInputError, GrpcUnimplementedError } from "./errors.js";
import type { FiltersMsg, NearSearchesMsg } from "./messages.js";
import { nearVectorQuery } from "./near-vector.js";
import { decodeMove } from "./near-text-move.js";
import { refuseDistanceWithCertainty, refuseSeveralOperators } from "./search-conflicts.js";
import { targetOf } from "./search.js";

/*
 * gRPC `weaviate.v1.Weaviate/Aggregate` (the client's aggregate API from Weaviate 1.29 on): the request's aggregations,
 * filters, search (nearVector / nearText / nearObject / hybrid with objectLimit), groupBy and limit become an
 * AggregateQuery for collections/aggregate.ts, whose rows are rendered as AggregateReply (singleResult, or
 * groupedResults with each group's value typed by the grouped property). Each metric is sent only when asked; a
 * metric over no values (mean of nothing) is left out, as Weaviate leaves it null.
 */

/** One requested aggregation: the property and one typed set of metric flags. */
interface AggregationMsg {
  property?: string;
  int?: Record<string, boolean | undefined>;
  number?: Record<string, boolean | undefined>;
  text?: { count?: boolean; type?: boolean; topOccurences?: boolean; topOccurencesLimit?: number };
  boolean?: Record<string, boolean | undefined>;
  date?: Record<string, boolean | undefined>;
  reference?: Record<string, boolean | undefined>;
}

/** The decoded AggregateRequest (the fields read). */
export interface AggregateRequestMsg extends NearSearchesMsg {
  collection?: string;
  tenant?: string;
  objectsCount?: boolean;
  aggregations?: AggregationMsg[];
  objectLimit?: number;
  groupBy?: { collection?: string; property?: string };
  limit?: number;
  filters?: FiltersMsg;
  hybrid?: SearchOptionsMsg["hybridSearch"];
}

/** The request's metric kinds, each with the data types it applies to and our metric names by flag. */
const KINDS = {
  int: { base: ["int"], flags: { count: "count", type: "type", sum: "sum", mean: "mean", mode: "mode", median: "median", maximum: "maximum", minimum: "minimum" } },
  number: { base: ["number"], flags: { count: "count", type: "type", sum: "sum", mean: "mean", mode: "mode", median: "median", maximum: "maximum", minimum: "minimum" } },
  text: { base: ["text"], flags: { count: "count", type: "type", topOccurences: "topOccurrences" } },
  boolean: { base: ["boolean"], flags: { count: "count", type: "type", totalTrue: "totalTrue", totalFalse: "totalFalse", percentageTrue: "percentageTrue", percentageFalse: "percentageFalse" } },
  date: { base: ["date"], flags: { count: "count", type: "type", median: "median", mode: "mode", maximum: "maximum", minimum: "minimum" } },
  reference: { base: ["ref"], flags: { type: "type", pointingTo: "pointingTo" } },
} as const;
type Kind = keyof typeof KINDS;

const sent = (b: Buffer | undefined) => b !== undefined && b !== null;

/** The search an Aggregate runs to pick its objects (with objectLimit), or null for all (filtered) objects. */
function searchOf(req: AggregateRequestMsg): AggregateQuery["search"] | null {
  for (const [field, name] of [["nearImage", "nearImage"], ["nearAudio", "nearAudio"], ["nearVideo", "nearVideo"], ["nearDepth", "nearDepth"], ["nearThermal", "nearThermal"], ["nearImu", "nearIMU"]] as const) {
    if (req[field] !== undefined && sent(req[field])) throw new GrpcUnimplementedError(`aggregate: ${name} is not supported by OpenBatch`);
  }
  refuseSeveralOperators({ nearVector: req.nearVector, nearObject: req.nearObject, nearText: req.nearText, hybrid: req.hybrid });
  if (!(req.hybrid || req.nearVector || req.nearObject || req.nearText)) return null;
  const search: NonNullable<AggregateQuery["search"]> = {};
  if (req.hybrid) {
    const q = { class: "", limit: 0 } as SearchQuery;
    applySearchOptions({ hybridSearch: req.hybrid }, q);
    search.hybrid = q.hybrid;
    if (q.targetVector) search.targetVector = q.targetVector;
    return search;
  }
  refuseDistanceWithCertainty("nearVector", req.nearVector);
  refuseDistanceWithCertainty("nearObject", req.nearObject);
  refuseDistanceWithCertainty("nearText", req.nearText);
  const near = (req.nearVector ?? req.nearObject ?? req.nearText)!;
  const target = targetOf(near);
  if (target !== undefined) search.targetVector = target;
  if (req.nearVector) {
    const { vector, target: given } = nearVectorQuery(req.nearVector, target, "aggregate nearVector");
    if (given !== undefined) search.targetVector = given;
    search.vector = vector;
  } else if (req.nearText) {
    const concepts = req.nearText.query ?? [];
    if (concepts.length === 0) throw new GrpcInputError("aggregate nearText: no concepts given");
    search.concepts = concepts;
    const moveTo = decodeMove(req.nearText.moveTo, "moveTo");
    const moveAwayFrom = decodeMove(req.nearText.moveAway, "moveAway");
    if (moveTo) search.moveTo = moveTo;
    if (moveAwayFrom) search.moveAwayFrom = moveAwayFrom;
  } else {
    if (!req.nearObject!.id) throw new GrpcInputError("aggregate nearObject: no id given");
    search.nearObject = req.nearObject!.id;
  }
  if (near.distance !== undefined) search.distance = near.distance;
  if (near.certainty !== undefined) search.certainty = near.certainty;
  return search;
}

/** The requested aggregations as AggregateFields, with the kind each is answered in. */
function fieldsOf(def: ClassDef, list: AggregationMsg[]): { field: AggregateField; kind: Kind }[] {
  return list.map((a) => {
    const property = normalizePropertyName(a.property ?? "");
    const kinds = (Object.keys(KINDS) as Kind[]).filter((k) => a[k] !== undefined && a[k] !== null);
    if (kinds.length !== 1) throw new GrpcInputError(`aggregate: give one kind of metrics (int, number, text, boolean, date, reference) for property '${property}'`);
    const kind = kinds[0]!;
    const { base } = metricsOf(def, property);
    if (!(KINDS[kind].base as readonly string[]).includes(base)) throw new GrpcInputError(`aggregate: property '${property}' is of type ${base}, not ${kind}: ask for its ${base} metrics`);
    const flags = a[kind] as Record<string, unknown>;
    const metrics = Object.entries(KINDS[kind].flags).filter(([flag]) => flags[flag] === true).map(([, m]) => m as string);
    const field: AggregateField = { property, metrics };
    if (kind === "text" && a.text!.topOccurencesLimit !== undefined) field.topOccurrencesLimit = a.text!.topOccurencesLimit;
    return { field, kind };
  });
}

/** One row's metrics as the reply's Aggregations (null metrics left out). */
function aggregationsOf(row: AggregateRow, fields: { field: AggregateField; kind: Kind }[]): unknown {
  return {
    aggregations: fields.map(({ field, kind }) => {
      const values = row.properties[field.property] ?? {};
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(values)) {
        if (v === null || v === undefined) continue;
        if (k === "topOccurrences") out.topOccurences = { items: v };
        else out[k] = v;
      }
      return { property: field.property, [kind]: out };
    }),
  };
}

/** A group's value in the GroupedBy oneof matching the grouped property's type. */
function groupedValue(base: string, value: unknown): Record<string, unknown> {
  if (base === "int") return { int: value };
  if (base === "number") return { number: value };
  if (base === "boolean") return { boolean: value };
  return { text: String(value) };
}

/**
 * Aggregate: see the file comment.
 * @throws GrpcInputError (INVALID_ARGUMENT) for a bad request, GrpcUnimplementedError for media searches, and the
 * CollectionErrors of aggregate.ts (unknown class or property, a metric the type has not, a search without objectLimit).
 */
export async function aggregateRpc(collections: CollectionService, caller: Caller, req: AggregateRequestMsg): Promise<unknown> {
  const start = performance.now();
  const def = collections.getClass(caller, req.collection ?? "");
  if (!def) throw new GrpcInputError(`class '${req.collection ?? ""}' not present in schema`);
  const fields = fieldsOf(def, req.aggregations ?? []);
  const q: AggregateQuery = { class: def.class, fields: fields.map((f) => f.field) };
  if (req.tenant) q.tenant = req.tenant;
  if (req.filters) q.where = toWhere(req.filters, def, (n) => collections.getClass(caller, n));
  const search = searchOf(req);
  if (search) q.search = search;
  if (req.objectLimit !== undefined) q.objectLimit = req.objectLimit;
  let groupBase: string | null = null;
  if (req.groupBy) {
    if (req.groupBy.collection && req.groupBy.collection !== def.class && req.groupBy.collection !== req.collection) throw new GrpcUnimplementedError("aggregate groupBy: grouping by a property of another collection is not supported by OpenBatch");
    q.groupBy = normalizePropertyName(req.groupBy.property ?? "");
    groupBase = metricsOf(def, q.groupBy).base;
    if (req.limit !== undefined) q.limit = req.limit;
  } else if (req.limit !== undefined) throw new GrpcInputError("aggregate: limit (the number of groups) needs groupBy");
  const rows = await collections.aggregate(caller, q);
  const took = (performance.now() - start) / 1000;
  const count = (n: number) => (req.objectsCount ? { objectsCount: n } : {});
  if (!q.groupBy) return { took, singleResult: { ...count(rows[0]!.count), aggregations: aggregationsOf(rows[0]!, fields) } };
  return {
    took,
    groupedResults: {
      groups: rows.map((r) => ({
        ...count(r.count),
        aggregations: aggregationsOf(r, fields),
        groupedBy: { path: r.groupedBy!.path, ...groupedValue(groupBase!, r.groupedBy!.value) },
      })),
    },
  };
}
