import type { Caller, CollectionService } from "../../collections/collection-service.js";
import { toRestObject } from "./conversion.js";
import { seconds, type BatchObjectMsg } from "./messages.js";

/** The outcome of one object of a gRPC batch: its id (as sent, or the one given to it) and why it failed, if it did. */
export interface ObjectOutcome {
  id: string | undefined;
  error: string | null;
}

/**
 * Imports gRPC `BatchObject`s through the collections' batch import (the same path as `POST /v1/batch/objects`):
 * each object converted to the REST shape (a conversion problem fails that object alone), its `tenant` honoured,
 * objects of classes `caller` may not write failing one by one.
 * @returns one outcome per object, in input order.
 * @throws what the collections layer throws for the batch as a whole (e.g. the store cannot be written).
 */
export async function importObjects(collections: CollectionService, caller: Caller, objects: readonly BatchObjectMsg[]): Promise<ObjectOutcome[]> {
  const outcomes: ObjectOutcome[] = objects.map((o) => ({ id: o.uuid || undefined, error: null }));
  const rest: Record<string, unknown>[] = [];
  const at: number[] = [];
  objects.forEach((o, index) => {
    try {
      rest.push(toRestObject(o));
      at.push(index);
    } catch (err) {
      outcomes[index]!.error = (err as Error).message;
    }
  });
  if (rest.length) {
    const results = await collections.batchObjects(caller, rest);
    results.forEach((r, k) => {
      const outcome = outcomes[at[k]!]!;
      outcome.error = r.error;
      if (outcome.id === undefined && typeof r.object.id === "string") outcome.id = r.object.id;
    });
  }
  return outcomes;
}

/**
 * BatchObjects (`weaviate.v1.Weaviate/BatchObjects`): `{objects}` → `{took (s), errors: [{index, error}]}`, the
 * failures only, by index into `objects`. An empty request answers no errors.
 */
export async function batchObjectsRpc(collections: CollectionService, caller: Caller, req: { objects?: BatchObjectMsg[] }): Promise<unknown> {
  const start = performance.now();
  const objects = req.objects ?? [];
  if (objects.length === 0) return { took: 0, errors: [] };
  const outcomes = await importObjects(collections, caller, objects);
  const errors = outcomes.flatMap((o, index) => (o.error === null ? [] : [{ index, error: o.error }]));
  return { took: seconds(start), errors };
}
