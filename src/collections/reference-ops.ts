import type { StoredReference } from "../store/collection-store.js";
import { FORBIDDEN_PREFIX, forbiddenMessage, type Caller } from "./access.js";
import { type CollectionContext, isObject } from "./collection-context.js";
import type { ReferenceResult } from "./collection-types.js";
import { CollectionError, unprocessable } from "./errors.js";
import { parseSourceBeacon, parseTargetBeacon } from "./references.js";
import { isReferenceType, normalizeClassName, normalizePropertyName } from "./schema.js";
import { isMultiTenant, resolveTarget } from "./tenants.js";

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

/**
 * The references of one object's property (`/v1/objects/{class}/{id}/references/{prop}`): `add` appends the beacons,
 * `replace` makes them the property's only references, `delete` removes the references to them.
 * @throws CollectionError 422 with Weaviate's message for a bad beacon, class, property or object; 403 when `caller`
 * may not write the class (or read a target).
 */
export async function objectReferences(ctx: CollectionContext, caller: Caller, op: "add" | "replace" | "delete", cls: string, id: string, property: string, beacons: unknown[], tenant?: string): Promise<void> {
  const from = `weaviate://localhost/${normalizeClassName(cls)}/${id}/${property}`;
  await ctx.writeLock.run(async () => {
    const checked: StoredReference[] = [];
    for (const b of beacons) {
      const beacon = isObject(b) ? b.beacon : undefined;
      if (typeof beacon !== "string") throw unprocessable("invalid reference: give {\"beacon\": \"weaviate://localhost/<Class>/<uuid>\"}");
      const r = await checkReference(ctx, caller, { from, to: beacon, tenant });
      if (typeof r === "string") throw new CollectionError(r.startsWith(FORBIDDEN_PREFIX) ? 403 : 422, r);
      checked.push(r);
    }
    if (op === "replace" && beacons.length === 0) {
      // No target to check the property by: check it alone.
      const st = ctx.requireClass(resolveTarget(ctx, cls, tenant), caller, "write");
      const prop = st.def.properties.find((p) => p.name === normalizePropertyName(property));
      if (!prop || !isReferenceType(prop.dataType)) throw unprocessable(`property ${property} does not exist for class ${st.def.class} or is not a cross-reference`);
      if (!(await ctx.options.store.getObject(st.def.class, id.toLowerCase(), false))) throw new CollectionError(404, `object ${st.def.class}/${id} not found`);
      await ctx.options.store.deleteReferences(st.def.class, id.toLowerCase(), prop.name, null);
      return;
    }
    const first = checked[0]!;
    if (op === "replace") await ctx.options.store.deleteReferences(first.from_class, first.from_id, first.property, null);
    if (op === "delete") for (const r of checked) await ctx.options.store.deleteReferences(r.from_class, r.from_id, r.property, { to_class: r.to_class, to_id: r.to_id });
    else await ctx.options.store.addReferences(checked);
  });
}

/** @returns the reference to store, or why it cannot be. */
async function checkReference(ctx: CollectionContext, caller: Caller, ref: Record<string, unknown>): Promise<StoredReference | string> {
  const source = parseSourceBeacon(ref.from);
  const target = parseTargetBeacon(ref.to);
  const errors = ["error" in source ? source.error : null, "error" in target ? target.error : null].filter((e): e is string => e !== null);
  if (errors.length) return errors.join(", ");
  if ("error" in source || "error" in target) return "invalid reference";
  // A multi-tenant source: the reference is the tenant's (its partition, tenants.ts); Weaviate's 422s otherwise.
  const tenant = typeof ref.tenant === "string" && ref.tenant ? ref.tenant : undefined;
  let sourceKey: string;
  try {
    sourceKey = resolveTarget(ctx, source.class, tenant);
  } catch (err) {
    if (err instanceof CollectionError) return err.message;
    throw err;
  }
  const st = ctx.classes.get(sourceKey);
  if (!st) return `source class "${source.class}" not found in schema`;
  if (!ctx.allows(caller, st, "write")) return forbiddenMessage("write", source.class);
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
  // A multi-tenant target is reached within the source's tenant only (as in Weaviate); its tenant must exist and be active.
  if (isMultiTenant(targetState.def)) {
    if (!tenant) return `invalid reference: target class ${toClass} has multi-tenancy enabled: only a multi-tenant class can reference it, within one tenant`;
    try {
      resolveTarget(ctx, toClass, tenant);
    } catch (err) {
      if (err instanceof CollectionError) return `target class ${toClass}: ${err.message}`;
      throw err;
    }
  }
  if (!(await ctx.options.store.getObject(sourceKey, source.id, false))) return `source object ${source.class}/${source.id} not found${tenant ? ` in tenant ${JSON.stringify(tenant)}` : ""}`;
  // to_class stays the class's name (the beacon as given); the tenant is the source partition's.
  return { from_class: sourceKey, from_id: source.id, property: source.property, to_class: toClass, to_id: target.id };
}

