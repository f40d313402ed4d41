import type { SearchResult } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { isReferenceType, normalizePropertyName, type ClassDef } from "./schema.js";

/*
 * groupBy of a vector or hybrid search (Weaviate's `groupBy: {path, groups, objectsPerGroup}`): the hits, best first,
 * are put in groups by the value of one property (each element of an array property is a group of its own); the first
 * `groups` groups to appear (so ordered by their best hit) are returned, each with its first `objectsPerGroup` hits.
 * The hits are the search's own `limit` nearest (offset + limit in Weaviate): Weaviate's grouper does not widen the
 * search, so a small limit can leave fewer groups, or fewer hits in a group, than asked for.
 */

/** One group: its value as text, how many hits it holds (at most objectsPerGroup), their distance range and the hits. */
export interface HitGroup {
  name: string;
  minDistance: number;
  maxDistance: number;
  numberOfObjects: number;
  hits: SearchResult[];
}

/** @throws CollectionError 422 for an unknown or reference property, or non-positive counts. */
export function checkGroupBy(def: ClassDef, property: string, groups: number, objectsPerGroup: number): string {
  const prop = def.properties.find((p) => p.name === normalizePropertyName(property));
  if (!prop) throw unprocessable(`groupBy: no such prop with name '${property}' found in class '${def.class}' in the schema`);
  if (isReferenceType(prop.dataType)) throw unprocessable("groupBy: grouping by a reference property is not supported by OpenBatch");
  if (!(groups > 0) || !(objectsPerGroup > 0)) throw unprocessable("groupBy: numberOfGroups and objectsPerGroup must be > 0");
  return prop.name;
}

/** Groups hits (best first) by `property`. */
export function groupHits(hits: SearchResult[], property: string, groups: number, objectsPerGroup: number): HitGroup[] {
  const out = new Map<string, HitGroup>();
  for (const h of hits) {
    const v = h.properties[property];
    if (v === undefined || v === null) continue;
    for (const x of Array.isArray(v) ? v : [v]) {
      const name = typeof x === "string" ? x : JSON.stringify(x);
      let g = out.get(name);
      if (!g) {
        if (out.size >= groups) continue;
        out.set(name, (g = { name, minDistance: Infinity, maxDistance: -Infinity, numberOfObjects: 0, hits: [] }));
      }
      if (g.hits.length >= objectsPerGroup) continue;
      g.hits.push(h);
      g.numberOfObjects++;
      const d = h.distance ?? 0;
      g.minDistance = Math.min(g.minDistance, d);
      g.maxDistance = Math.max(g.maxDistance, d);
    }
  }
  return [...out.values()];
}
