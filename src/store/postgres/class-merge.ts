import { OpenBatchError } from "../../core/errors.js";

/**
 * Replacing a class definition in a store many API servers write at once. Each server writes the whole definition from
 * its own in-memory copy, which may be a moment behind another server's change (two properties added at once, or
 * auto-schema adding different properties from two imports). Weaviate never removes a property from a class and never
 * changes a property's data type, so a property missing from the definition being written was added by another
 * server meanwhile: it is kept, as are nested properties missing the same way. Everything else in the written
 * definition wins (descriptions, settings: last write wins).
 */

/** A property as stored: its name, data type and nested properties are what the merge reads; the rest is carried. */
interface StoredProperty {
  name: string;
  dataType?: unknown;
  nestedProperties?: StoredProperty[];
  [key: string]: unknown;
}

/**
 * `next` with every property of `stored` it lacks kept, in stored order (then the new ones), nested ones merged the
 * same way. Definitions without a `properties` array (a tenant's partition row) are written as given.
 * @param stored the definition in the row now (read under the row's lock); `next` the one being written.
 * @returns the definition to write, and `kept`: whether it holds what `next` lacked (the writer's copy is stale).
 * @throws OpenBatchError 409 when a property in both has a different data type (two servers added one name with
 *   different types at once; the first stays).
 */
export function mergeClassDefinition(className: string, stored: unknown, next: unknown): { definition: unknown; kept: boolean } {
  const before = propertiesOf(stored);
  const after = propertiesOf(next);
  if (!before || !after) return { definition: next, kept: false };
  const merged = mergeProperties(className, before, after);
  if (merged.kept === false) return { definition: next, kept: false };
  return { definition: { ...(next as object), properties: merged.properties }, kept: true };
}

function propertiesOf(def: unknown): StoredProperty[] | null {
  const p = (def as { properties?: unknown } | null)?.properties;
  return Array.isArray(p) ? (p as StoredProperty[]) : null;
}

function mergeProperties(className: string, stored: StoredProperty[], next: StoredProperty[], path = ""): { properties: StoredProperty[]; kept: boolean } {
  const byName = new Map(next.map((p) => [p.name, p]));
  let kept = false;
  const out: StoredProperty[] = [];
  for (const old of stored) {
    const now = byName.get(old.name);
    if (!now) {
      out.push(old);
      kept = true;
      continue;
    }
    byName.delete(old.name);
    if (JSON.stringify(old.dataType) !== JSON.stringify(now.dataType)) {
      throw new OpenBatchError(
        "conflict",
        `class ${JSON.stringify(className)}: conflict for property ${JSON.stringify(path + old.name)}: another server changed the schema at the same moment (data type ${JSON.stringify(old.dataType)} is stored); retry`,
      );
    }
    if (Array.isArray(old.nestedProperties) && Array.isArray(now.nestedProperties)) {
      const nested = mergeProperties(className, old.nestedProperties, now.nestedProperties, `${path}${old.name}.`);
      if (nested.kept) {
        out.push({ ...now, nestedProperties: nested.properties });
        kept = true;
        continue;
      }
    }
    out.push(now);
  }
  out.push(...byName.values());
  return { properties: out, kept };
}
