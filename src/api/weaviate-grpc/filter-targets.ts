import { isReferenceType, normalizePropertyName, type ClassDef } from "../../collections/schema.js";
import { GrpcInputError } from "./errors.js";

/*
 * The target of a gRPC filter (weaviate.proto FilterTarget): a property, a hop through a reference (`single_target`,
 * whose class is the property's only target, or `multi_target` naming it), nested to any depth, or a reference
 * property's `count` — as the REST `where` path Weaviate's GraphQL takes (`["hasCategory", "Category", "title"]`,
 * `["hasCategory"]` for the count), which the collections layer evaluates (reference-filters.ts).
 */

/** A `FilterTarget` message. */
export interface FilterTargetMsg {
  property?: string;
  singleTarget?: { on?: string; target?: FilterTargetMsg };
  multiTarget?: { on?: string; target?: FilterTargetMsg; targetCollection?: string };
  count?: { on?: string };
}

/**
 * The REST path of a filter target, and the class its last element belongs to (null when unknown); `classOf` gives
 * the classes a path goes through.
 * @throws GrpcInputError for a single-target hop on a property that is not a reference or has several targets, a
 * multi-target hop without its collection, a hop with nothing after it.
 */
export function filterPath(t: FilterTargetMsg, def: ClassDef | null, classOf?: (name: string) => ClassDef | null): { path: string[]; leaf: ClassDef | null } {
  if (t.property) return { path: [t.property], leaf: def };
  if (t.count) return { path: [t.count.on ?? ""], leaf: def };
  const hop = t.singleTarget ?? t.multiTarget!;
  const on = hop.on ?? "";
  let cls = t.multiTarget?.targetCollection ?? "";
  if (t.singleTarget) {
    const prop = def?.properties.find((p) => p.name === normalizePropertyName(on));
    if (!prop || !isReferenceType(prop.dataType)) throw new GrpcInputError(`filters: '${on}' is not a reference property of collection ${def?.class ?? "?"}`);
    if (prop.dataType.length > 1) throw new GrpcInputError(`filters: the reference property '${on}' of collection ${def!.class} points to several collections (${prop.dataType.join(", ")}): name one with Filter.byRefMultiTarget('${on}', '<collection>')`);
    cls = prop.dataType[0]!;
  }
  if (!cls) throw new GrpcInputError(`filters: a multi-target reference filter on '${on}' needs its target collection`);
  if (!hop.target) throw new GrpcInputError(`filters: the reference filter on '${on}' names nothing to filter on in ${cls}`);
  const rest = filterPath(hop.target, classOf?.(cls) ?? null, classOf);
  return { path: [on, cls, ...rest.path], leaf: rest.leaf };
}
