/**
 * Arguments below the class field of a GraphQL `Get` / `Aggregate` (graphql.ts). Weaviate's schema gives none of
 * those fields an argument except an Aggregate text property's `topOccurrences(limit)`, so graphql-go refuses any
 * other with `Unknown argument "a" on field "f" of type "T".`; here they are refused the same way instead of being
 * read past. Type names follow Weaviate's schema: `<Class>`, `<Class>AdditionalProperties`, `<Class>AdditionalGroup…`,
 * `GeoCoordinates`, `PhoneNumber`, `<Class><Prop>Object`, `Aggregate<Class>`, `AggregateMetaObject`, ….
 */
import { isReferenceType, type ClassDef, type PropertyDef } from "../../collections/schema.js";
import { GraphQLError, loc, type Field } from "./graphql-parser.js";
import type { ClassLookup } from "./graphql-references.js";

const upper = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** @throws GraphQLError for the first argument of `f`, which lives on type `type`. */
function refuseArguments(f: Field, type: string): void {
  const first = f.args.keys().next();
  if (!first.done) throw new GraphQLError(`Unknown argument "${first.value}" on field "${f.name}" of type "${type}".`, loc(f));
}

/** Every field below `f` (its own arguments are not checked), all on type `type`'s subtree as named by `child`. */
function refuseBelow(f: Field, child: (sub: Field) => string): void {
  for (const sub of f.selections ?? []) {
    refuseArguments(sub, child(sub));
    refuseBelow(sub, () => `${child(sub)}${upper(sub.name)}`);
  }
}

/**
 * Checks the selections of a Get on class `def` (already validated as fields) for arguments; references are followed
 * into their fragments' classes through `classOf`. @throws GraphQLError naming the first argument found.
 */
export function refuseGetArguments(def: ClassDef, selections: Field[], classOf: ClassLookup, type: string = def.class): void {
  for (const s of selections) {
    if (s.name === "...") {
      const target = s.on ? classOf(s.on) : null;
      if (target) refuseGetArguments(target, s.selections ?? [], classOf);
      continue;
    }
    refuseArguments(s, type);
    if (s.name === "_additional") {
      refuseAdditional(def, s, classOf);
      continue;
    }
    const prop = def.properties.find((p) => p.name === s.name);
    if (!prop || !s.selections) continue;
    if (isReferenceType(prop.dataType)) refuseGetArguments(def, s.selections.filter((x) => x.name === "..."), classOf);
    else refuseComplex(def.class, prop, s);
  }
}

function refuseAdditional(def: ClassDef, additional: Field, classOf: ClassLookup): void {
  const type = `${def.class}AdditionalProperties`;
  for (const a of additional.selections ?? []) {
    refuseArguments(a, type);
    if (a.name === "group") {
      for (const g of a.selections ?? []) {
        refuseArguments(g, `${def.class}AdditionalGroup`);
        if (g.name === "hits") refuseGetArguments(def, g.selections ?? [], classOf, `${def.class}AdditionalGroupHits`);
        else refuseBelow(g, () => `${def.class}AdditionalGroup${upper(g.name)}`);
      }
    } else refuseBelow(a, () => `${def.class}Additional${upper(a.name)}`);
  }
}

/** A geoCoordinates / phoneNumber / object property's subfields, nested objects included. */
function refuseComplex(owner: string, prop: PropertyDef, s: Field): void {
  const type = prop.dataType[0] === "geoCoordinates" ? "GeoCoordinates" : prop.dataType[0] === "phoneNumber" ? "PhoneNumber" : `${owner}${upper(prop.name)}Object`;
  for (const sub of s.selections ?? []) {
    refuseArguments(sub, type);
    const nested = prop.nestedProperties?.find((n) => n.name === sub.name);
    if (nested && sub.selections) refuseComplex(type.replace(/Object$/, ""), nested, sub);
  }
}

/**
 * Checks the selections of an Aggregate on class `def` for arguments; a metric's own arguments are checked by
 * validateAggregateSelections (topOccurrences takes `limit`). @throws GraphQLError naming the first one found.
 */
export function refuseAggregateArguments(def: ClassDef, selections: Field[]): void {
  const type = `Aggregate${def.class}`;
  for (const s of selections) {
    refuseArguments(s, type);
    if (s.name === "meta") refuseBelow(s, () => "AggregateMetaObject");
    else if (s.name === "groupedBy") refuseBelow(s, () => "AggregateGroupedBy");
    else for (const m of s.selections ?? []) for (const t of m.selections ?? []) refuseArguments(t, "TextPropertyAggregateTopOccurrences");
  }
}
