import type { StoredObject } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import { type CollectionContext, notPresent } from "./collection-context.js";
import { unprocessable } from "./errors.js";
import { referenceTarget } from "./reference-filters.js";
import { isReferenceType, normalizeClassName, propertyOf } from "./schema.js";
import { vectorsOf } from "./search.js";
import { parentClass } from "./tenants.js";

/*
 * References resolved in query results (GraphQL `Get { A { ref { ... on B { … } } } }`, gRPC `returnReferences`):
 * for each object of a result, the objects its reference properties point to, read as asked, and their references in
 * turn, to any depth the request goes. As Weaviate: a reference whose target object no longer exists is left out; a
 * multi-tenant target is read in the source's tenant; the caller must be allowed to read every class reached.
 */

/** What to resolve of one reference property of the objects. */
export interface ReferenceRequest {
  /** The reference property (first letter case-insensitive). */
  property: string;
  /** Only the references to this class; required on a property with several target classes. */
  targetClass?: string;
  /** Read the referenced objects' vectors. */
  includeVector?: boolean;
  /** References of the referenced objects to resolve in turn. */
  references?: ReferenceRequest[];
}

/** A referenced object, with what was asked of it. */
export interface ReferencedObject {
  /** Its class (the class's name, also in a tenant). */
  class: string;
  id: string;
  /** Its non-reference properties, all of them (the API layer picks the ones asked for). */
  properties: Record<string, unknown>;
  /** Its legacy vector (null when not asked for or absent). */
  vector: number[] | null;
  /** Its vectors by name, `default` for the legacy one (null when not asked for or absent). */
  vectors: Record<string, number[]> | null;
  creationTimeUnix: number;
  lastUpdateTimeUnix: number;
  /** One list per entry of the request's `references`, in that order: the objects this one's references point to. */
  references: ReferencedObject[][];
}

/**
 * The referenced objects of objects `ids` of class (or tenant partition) `sourceKey`.
 * @returns per source id, one list per request (in request order) of the objects its references on that property
 * point to, in the order the references were added; an id without any gets empty lists.
 * @throws CollectionError 422 for an unknown class or property, a property that is not a reference, a target class
 * the property cannot point to, a multi-target property without targetClass (Weaviate's message), an inactive tenant;
 * 403 when `caller` may not read a class reached.
 */
export async function resolveReferences(ctx: CollectionContext, caller: Caller, sourceKey: string, ids: readonly string[], requests: readonly ReferenceRequest[]): Promise<Map<string, ReferencedObject[][]>> {
  const st = ctx.classes.get(sourceKey);
  if (!st) throw unprocessable(notPresent(parentClass(sourceKey)));
  const cls = parentClass(sourceKey);
  const out = new Map<string, ReferencedObject[][]>(ids.map((id) => [id, requests.map(() => [])]));
  // Checked in full before anything is read, so a bad request fails alike with or without objects.
  const plans = requests.map((r) => {
    const prop = propertyOf(st.def, r.property);
    if (!prop) throw unprocessable(`no such prop with name '${r.property}' found in class '${cls}' in the schema. Check your schema files for which properties in this class are available`);
    if (!isReferenceType(prop.dataType)) throw unprocessable(`property '${prop.name}' of class '${cls}' is not a cross-reference property (its data type is ${prop.dataType.join(", ")}): return it as a property`);
    let target = r.targetClass ? normalizeClassName(r.targetClass) : undefined;
    if (target === undefined) {
      if (prop.dataType.length > 1) throw unprocessable(`multi target references from collection ${cls} and property ${r.property} with need an explicit linked collection. Available linked collections are [${prop.dataType.join(" ")}]`);
      target = prop.dataType[0]!;
    } else if (!prop.dataType.includes(target)) {
      throw unprocessable(`class '${target}' is not a target of the reference property '${prop.name}' of class '${cls}' (it references ${prop.dataType.join(", ")})`);
    }
    return { request: r, property: prop.name, target, partition: referenceTarget(ctx, caller, st, target) };
  });
  if (ids.length === 0) return out;
  const refs = await ctx.options.store.referencesFrom(sourceKey, [...new Set(ids)]);
  for (const [i, plan] of plans.entries()) {
    if (!plan.partition) continue;
    const wanted = refs.filter((r) => r.property === plan.property && r.to_class === plan.target);
    const found = new Map<string, StoredObject>();
    for (const id of new Set(wanted.map((r) => r.to_id))) {
      const o = await ctx.options.store.getObject(plan.partition.def.class, id, plan.request.includeVector === true);
      if (o) found.set(id, o);
    }
    const nested = plan.request.references?.length ? await resolveReferences(ctx, caller, plan.partition.def.class, [...found.keys()], plan.request.references) : null;
    const objects = new Map([...found].map(([id, o]) => [id, referenced(o, plan.target, nested?.get(id) ?? [])]));
    for (const r of wanted) {
      const o = objects.get(r.to_id);
      if (o) out.get(r.from_id)?.[i]!.push(o);
    }
  }
  return out;
}

function referenced(o: StoredObject, cls: string, references: ReferencedObject[][]): ReferencedObject {
  const vectors = vectorsOf(o);
  return {
    class: cls,
    id: o.id,
    properties: o.properties,
    vector: o.vector ? Array.from(o.vector) : null,
    vectors,
    creationTimeUnix: o.created_at,
    lastUpdateTimeUnix: o.updated_at,
    references,
  };
}
