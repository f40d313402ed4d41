import type { Caller, CollectionService, ReferencedObject, ReferenceRequest } from "../../collections/collection-service.js";
import { CollectionError } from "../../collections/errors.js";
import { isReferenceType, type ClassDef, type PropertyDef } from "../../collections/schema.js";
import { GraphQLError, keyOf, loc, type Field } from "./graphql-parser.js";

/*
 * References in GraphQL `Get` (graphql-get.ts): a reference property selected with one inline fragment per target
 * class, to any depth,
 *     hasCategory { ... on Category { title _additional { id } inCatalog { ... on Catalog { name } } } }
 * is read into ReferenceRequests (one per fragment) for CollectionService.resolveReferences, and rendered as Weaviate
 * answers: the list of referenced objects, each as its fragment selects it, `null` when the property has none.
 */

/** A definition by class name (null when absent); throws for one the caller may not read. */
export type ClassLookup = (name: string) => ClassDef | null;

/**
 * The definitions of classes as `caller` may read them, each read once; a class the caller may not read is a
 * GraphQLError with Weaviate's 403 message.
 */
export function classLookup(service: CollectionService, caller: Caller): ClassLookup {
  const defs = new Map<string, ClassDef | null>();
  return (name) => {
    if (!defs.has(name)) {
      try {
        defs.set(name, service.getClass(caller, name));
      } catch (err) {
        if (err instanceof CollectionError) throw new GraphQLError(err.message);
        throw err;
      }
    }
    return defs.get(name)!;
  };
}

/** Renders one object (a hit or a referenced object) as `selections` select it. */
export type RenderObject = (o: ReferencedObject, selections: Field[], def: ClassDef | null, refs: ReferencedObject[][]) => Record<string, unknown>;

/** Weaviate's name of the union type of a reference property: `ArticleHasCategoryObj`. */
const unionOf = (def: ClassDef, prop: PropertyDef) => `${def.class}${prop.name.charAt(0).toUpperCase()}${prop.name.slice(1)}Obj`;

/**
 * Checks the selection `s` of reference property `prop` of class `def`: only inline fragments (and `__typename`), each
 * on a class the property points to; each fragment's selections are checked against its class through `validate`
 * when `classOf` is given.
 * @throws GraphQLError with GraphQL's words for a field outside a fragment or a fragment on another type.
 */
export function validateReferenceSelection(def: ClassDef, prop: PropertyDef, s: Field, classOf: ClassLookup | undefined, validate: (def: ClassDef, selections: Field[]) => void): void {
  const union = unionOf(def, prop);
  for (const x of s.selections ?? []) {
    if (x.name === "__typename") continue;
    if (x.name !== "...") throw new GraphQLError(`Cannot query field "${x.name}" on type "${union}". Did you mean to use an inline fragment on "${prop.dataType[0]}"?`, loc(x));
    const target = classOf?.(x.on!);
    if (classOf && !target) throw new GraphQLError(`Unknown type "${x.on}".`, loc(x));
    if (!prop.dataType.includes(x.on!)) throw new GraphQLError(`Fragment cannot be spread here as objects of type "${union}" can never be of type "${x.on}".`, loc(x));
    if (target) validate(target, x.selections!);
  }
}

/** The reference requests of a selection set, and which request each fragment asked (by the fragment's Field). */
export interface ReferencePlan {
  requests: ReferenceRequest[];
  /** Per fragment, its index in its parent's list (`requests`, or the enclosing request's `references`). */
  slots: Map<Field, number>;
}

/** Reads the reference requests of `selections` of class `def` (every fragment of every reference property, nested). */
export function referencePlan(def: ClassDef | null, selections: Field[], classOf: ClassLookup): ReferencePlan {
  const slots = new Map<Field, number>();
  const requestsOf = (d: ClassDef | null, sel: Field[]): ReferenceRequest[] => {
    const out: ReferenceRequest[] = [];
    for (const s of sel) {
      const prop = d?.properties.find((p) => p.name === s.name);
      if (!prop || !isReferenceType(prop.dataType)) continue;
      for (const fr of s.selections ?? []) {
        if (fr.name !== "...") continue;
        slots.set(fr, out.length);
        const wantsVector = fr.selections!.some((a) => a.name === "_additional" && (a.selections ?? []).some((x) => x.name === "vector" || x.name === "vectors"));
        out.push({ property: prop.name, targetClass: fr.on!, includeVector: wantsVector, references: requestsOf(classOf(fr.on!), fr.selections!) });
      }
    }
    return out;
  };
  return { requests: requestsOf(def, selections), slots };
}

/**
 * The value of reference field `s` of an object whose resolved references are `refs` (one list per request of its
 * level): the referenced objects of each fragment, rendered by `render`; null when there are none.
 */
export function renderReferenceField(s: Field, refs: ReferencedObject[][], plan: ReferencePlan, classOf: ClassLookup, render: RenderObject): unknown[] | null {
  const out: unknown[] = [];
  const typename = (s.selections ?? []).filter((x) => x.name === "__typename");
  for (const fr of s.selections ?? []) {
    if (fr.name !== "...") continue;
    for (const o of refs[plan.slots.get(fr)!] ?? []) {
      const item = render(o, fr.selections!, classOf(o.class), o.references);
      for (const t of typename) item[keyOf(t)] = o.class;
      out.push(item);
    }
  }
  return out.length ? out : null;
}
