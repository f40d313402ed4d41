import type { StoredObject } from "../store/collection-store.js";
import { unprocessable } from "./errors.js";
import { normalizePropertyName, type ClassDef } from "./schema.js";

/*
 * Sorting of listings (GraphQL `sort: [{path: ["prop"], order: asc|desc}]`, gRPC `sort_by`): several keys, each on a
 * scalar property (text by code point, int/number, date, boolean, uuid) or on `_id` / `id`, `_creationTimeUnix`,
 * `_lastUpdateTimeUnix`. A missing (null) value sorts first ascending and last descending, as in Weaviate. Ties keep
 * insertion order.
 */

/** One sort key. */
export interface SortKey {
  path: string[];
  order: "asc" | "desc";
}

type Getter = (o: StoredObject) => string | number | boolean | null;

/**
 * A comparator of stored objects for sort keys.
 * @throws CollectionError 422 for an empty/long path, an unknown property, an array, reference or object property, or
 * an order other than asc/desc.
 */
export function compileSort(keys: SortKey[], def: ClassDef): (a: StoredObject, b: StoredObject) => number {
  if (keys.length === 0) throw unprocessable("sort: give at least one sort key");
  const getters: [Getter, number][] = keys.map((k) => {
    if (k.order !== "asc" && k.order !== "desc") throw unprocessable(`sort: invalid order ${JSON.stringify(k.order)}: use asc or desc`);
    if (!Array.isArray(k.path) || k.path.length !== 1 || typeof k.path[0] !== "string") throw unprocessable("sort: path must name one property (sorting through references is not supported)");
    const dir = k.order === "asc" ? 1 : -1;
    const name = k.path[0];
    if (name === "_id" || name === "id") return [(o) => o.id, dir];
    if (name === "_creationTimeUnix") return [(o) => o.created_at, dir];
    if (name === "_lastUpdateTimeUnix") return [(o) => o.updated_at, dir];
    const prop = def.properties.find((p) => p.name === normalizePropertyName(name));
    if (!prop) throw unprocessable(`sort: no such prop with name '${name}' found in class '${def.class}' in the schema`);
    const type = prop.dataType[0]!;
    if (!["text", "int", "number", "boolean", "date", "uuid"].includes(type)) throw unprocessable(`sort: sorting on property '${prop.name}' of type ${type} is not supported by OpenBatch (scalar text, int, number, boolean, date, uuid only)`);
    if (type === "date") return [(o) => (typeof o.properties[prop.name] === "string" ? Date.parse(o.properties[prop.name] as string) : null), dir];
    return [(o) => (o.properties[prop.name] ?? null) as string | number | boolean | null, dir];
  });
  return (a, b) => {
    for (const [get, dir] of getters) {
      const x = get(a);
      const y = get(b);
      if (x === y) continue;
      if (x === null) return -dir;
      if (y === null) return dir;
      return (x < y ? -1 : 1) * dir;
    }
    return a.seq - b.seq;
  };
}
