import type { StoredReference } from "../store/collection-store.js";
import { forbiddenMessage, type Caller } from "./access.js";
import { type CollectionContext, isObject } from "./collection-context.js";
import type { ReferenceResult } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { parseSourceBeacon, parseTargetBeacon } from "./references.js";
import { isReferenceType } from "./schema.js";

/*
 * Batch references (`POST /v1/batch/references`): each `{from, to}` checked against the schema, then stored. A
 * reference writes its source class and reads its target class: the caller needs both (see access.ts).
 */

/**
 * `POST /v1/batch/references`: validates each `{from, to}` (source class, reference property, target class) and
 * adds the valid ones in one transaction; a reference `caller` may not make fails alone with Weaviate's 403 message.
 * @returns one result per reference, in input order.
 * @throws CollectionError 422 for an empty list.
 */
export async function batchReferences(ctx: CollectionContext, caller: Caller, input: unknown[]): Promise<ReferenceResult[]> {
  if (input.length === 0) throw unprocessable("invalid params: length cannot be 0, need at least one reference for batching");
  return ctx.writeLock.run(async () => {
    const results: ReferenceResult[] = [];
    const valid: StoredReference[] = [];
    for (const raw of input) {
      const ref = isObject(raw) ? raw : {};
      const result: ReferenceResult = { from: ref.from, to: ref.to, error: null };
      results.push(result);
      const checked = await checkReference(ctx, caller, ref);
      if (typeof checked === "string") result.error = checked;
      else valid.push(checked);
    }
    if (valid.length) await ctx.options.store.addReferences(valid);
    return results;
  });
}

/** @returns the reference to store, or why it cannot be. */
async function checkReference(ctx: CollectionContext, caller: Caller, ref: Record<string, unknown>): Promise<StoredReference | string> {
  const source = parseSourceBeacon(ref.from);
  const target = parseTargetBeacon(ref.to);
  const errors = ["error" in source ? source.error : null, "error" in target ? target.error : null].filter((e): e is string => e !== null);
  if (errors.length) return errors.join(", ");
  if ("error" in source || "error" in target) return "invalid reference";
  if (typeof ref.tenant === "string" && ref.tenant) return `class ${source.class} has multi-tenancy disabled, but request was with tenant`;
  const st = ctx.classes.get(source.class);
  if (!st) return `source class "${source.class}" not found in schema`;
  if (!ctx.allows(caller, st, "write")) return forbiddenMessage("write", st.def.class);
  const prop = st.def.properties.find((p) => p.name === source.property);
  if (!prop) return `property ${source.property} does not exist for class ${source.class}`;
  if (!isReferenceType(prop.dataType)) return `property ${source.property} of class ${source.class} is not a cross-reference property (its data type is ${prop.dataType.join(", ")})`;
  let toClass = target.class;
  if (toClass === null) {
    if (prop.dataType.length !== 1) return "multi-target references require the class name in the target beacon url";
    toClass = prop.dataType[0]!;
  }
  const targetState = ctx.classes.get(toClass);
  if (!targetState) return `target class "${toClass}" not found in schema`;
  if (!ctx.allows(caller, targetState, "read")) return forbiddenMessage("read", toClass);
  if (!prop.dataType.includes(toClass)) return `target class "${toClass}" is not a valid target of property ${source.property} of class ${source.class} (it references ${prop.dataType.join(", ")})`;
  if (!(await ctx.options.store.getObject(source.class, source.id, false))) return `source object ${source.class}/${source.id} not found`;
  return { from_class: source.class, from_id: source.id, property: source.property, to_class: toClass, to_id: target.id };
}

