import type { Caller, CollectionService } from "../../collections/collection-service.js";
import { seconds } from "./messages.js";

/** A decoded `BatchReference` (weaviate.proto): a reference from one object's property to another object. */
export interface BatchReferenceMsg {
  /** The source's reference property. */
  name?: string;
  fromCollection?: string;
  fromUuid?: string;
  /** Unset: the property's only target class. */
  toCollection?: string;
  toUuid?: string;
  tenant?: string;
}

/**
 * The source beacon `weaviate://localhost/<fromCollection>/<fromUuid>/<name>`, spelled exactly as the client sent
 * the parts: the official clients key a streamed reference's acks and results by this string.
 */
export const sourceBeacon = (r: BatchReferenceMsg): string => `weaviate://localhost/${r.fromCollection ?? ""}/${r.fromUuid ?? ""}/${r.name ?? ""}`;

/** A BatchReference as `POST /v1/batch/references` carries it: `{from, to, tenant?}`. */
export function toRestReference(r: BatchReferenceMsg): Record<string, unknown> {
  const to = r.toCollection ? `weaviate://localhost/${r.toCollection}/${r.toUuid ?? ""}` : `weaviate://localhost/${r.toUuid ?? ""}`;
  return { from: sourceBeacon(r), to, ...(r.tenant ? { tenant: r.tenant } : {}) };
}

/**
 * Adds gRPC `BatchReference`s through the collections' batch references (the same checks and messages as
 * `POST /v1/batch/references`: source class and property, target class, tenants, the caller's rights).
 * @returns per reference, in input order, why it failed, or null when it was added.
 * @throws what the collections layer throws for the batch as a whole.
 */
export async function importReferences(collections: CollectionService, caller: Caller, refs: readonly BatchReferenceMsg[]): Promise<(string | null)[]> {
  if (refs.length === 0) return [];
  const results = await collections.batchReferences(caller, refs.map(toRestReference));
  return results.map((r) => r.error);
}

/**
 * BatchReferences (`weaviate.v1.Weaviate/BatchReferences`): `{references}` → `{took (s), errors: [{index, error}]}`,
 * the failures only, by index into `references`. An empty request answers no errors.
 */
export async function batchReferencesRpc(collections: CollectionService, caller: Caller, req: { references?: BatchReferenceMsg[] }): Promise<unknown> {
  const start = performance.now();
  const errors = (await importReferences(collections, caller, req.references ?? [])).flatMap((error, index) => (error === null ? [] : [{ index, error }]));
  return { took: seconds(start), errors };
}
