import type { SearchResult } from "../../collections/collection-service.js";
import { CollectionError } from "../../collections/errors.js";
import { groupHits } from "../../collections/group-by.js";

/*
 * GraphQL `groupBy` on Get (Weaviate's `groupBy: {path: ["prop"], groups: n, objectsPerGroup: m}` with a nearVector,
 * nearText, nearObject, hybrid or bm25 search), as gRPC groupBy does it (collections/group-by.ts): one entry per
 * group, in order of its best hit, being that hit with `_additional { group { id groupedBy { value path } count
 * maxDistance minDistance hits { <properties> _additional { id distance … } } } }`.
 */

/** A selected field, as graphql.ts parses it. */
export interface GroupField {
  alias: string | null;
  name: string;
  selections: GroupField[] | null;
  line: number;
  column: number;
}

/** The parsed `groupBy` argument. */
export interface GroupByArg {
  property: string;
  groups: number;
  objectsPerGroup: number;
}

const bad = (message: string) => new CollectionError(422, message);
const keyOf = (f: GroupField) => f.alias ?? f.name;
const GROUP_FIELDS = new Set(["id", "groupedBy", "count", "maxDistance", "minDistance", "hits", "__typename"]);

/** `groupBy: {path, groups, objectsPerGroup}`. @throws CollectionError 422 for a missing or wrong field. */
export function parseGroupByArg(v: unknown): GroupByArg {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("groupBy must be an object: {path: [\"prop\"], groups: n, objectsPerGroup: m}");
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!["path", "groups", "objectsPerGroup"].includes(k) && o[k] !== undefined) throw bad(`groupBy: field '${k}' is not supported (use path, groups, objectsPerGroup)`);
  const path = typeof o.path === "string" ? [o.path] : o.path;
  if (!Array.isArray(path) || path.length !== 1 || typeof path[0] !== "string") throw bad("groupBy: path must name one property, as [\"prop\"]");
  const int = (x: unknown, name: string) => {
    if (typeof x !== "number" || !Number.isInteger(x) || x <= 0) throw bad(`groupBy: ${name} must be an integer > 0`);
    return x;
  };
  return { property: path[0], groups: int(o.groups, "groups"), objectsPerGroup: int(o.objectsPerGroup, "objectsPerGroup") };
}

/**
 * What is wrong with a `group { … }` selection of `_additional` (null: nothing). `hits` is checked by the caller as
 * an ordinary Get selection.
 */
export function groupSelectionError(cls: string, group: GroupField): { message: string; field: GroupField } | null {
  if (!group.selections) return { message: `Field "group" of type "${cls}AdditionalGroup" must have a sub selection.`, field: group };
  for (const s of group.selections) {
    if (!GROUP_FIELDS.has(s.name)) return { message: `Cannot query field "${s.name}" on type "${cls}AdditionalGroup".`, field: s };
    if (s.name === "groupedBy") {
      if (!s.selections) return { message: `Field "groupedBy" of type "${cls}AdditionalGroupGroupedBy" must have a sub selection.`, field: s };
      for (const g of s.selections) if (!["value", "path", "__typename"].includes(g.name)) return { message: `Cannot query field "${g.name}" on type "${cls}AdditionalGroupGroupedBy".`, field: g };
    }
    if (s.name === "hits") {
      if (!s.selections) return { message: `Field "hits" of type "[${cls}AdditionalGroupHits]" must have a sub selection.`, field: s };
      const add = s.selections.find((h) => h.name === "_additional");
      const nested = add?.selections?.find((a) => a.name === "group");
      if (nested) return { message: `Cannot query field "group" on type "${cls}AdditionalGroupHitAdditional".`, field: nested };
    }
  }
  return null;
}

/**
 * The entries of a grouped Get: per group its best hit with `group` set to the group as `selections` select it
 * (the `group` field inside `_additional`), hits rendered by `renderHit`.
 */
export function groupedEntries(hits: SearchResult[], arg: GroupByArg, property: string, selections: GroupField[], renderHit: (h: SearchResult, selections: GroupField[]) => Record<string, unknown>): (SearchResult & { group: unknown })[] {
  const groupField = selections.find((s) => s.name === "_additional")?.selections?.find((a) => a.name === "group") ?? null;
  return groupHits(hits, property, arg.groups, arg.objectsPerGroup).map((g, index) => {
    const group: Record<string, unknown> = {};
    for (const s of groupField?.selections ?? []) {
      const key = keyOf(s);
      if (s.name === "id") group[key] = index;
      else if (s.name === "count") group[key] = g.numberOfObjects;
      else if (s.name === "maxDistance") group[key] = g.maxDistance;
      else if (s.name === "minDistance") group[key] = g.minDistance;
      else if (s.name === "__typename") group[key] = "AdditionalGroup";
      else if (s.name === "groupedBy") group[key] = Object.fromEntries(s.selections!.map((x) => [keyOf(x), x.name === "value" ? g.name : x.name === "path" ? [property] : "AdditionalGroupGroupedBy"]));
      else if (s.name === "hits") group[key] = g.hits.map((h) => renderHit(h, s.selections!));
    }
    return { ...g.hits[0]!, group };
  });
}
