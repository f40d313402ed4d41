/**
 * Fields of Weaviate REST bodies that OpenBatch reads, so that a field it would drop (a typo such as `propertie`,
 * Weaviate's `vectorWeights`, …) is refused naming it instead of being stored without it. Weaviate's go-swagger
 * models ignore unknown JSON keys; OpenBatch refuses them (issue 12: nothing silently ignored), with null accepted
 * for every field Weaviate's model has, as clients serialize absent fields that way.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isEmpty = (v: unknown) => v === null || v === undefined || (isObject(v) && Object.keys(v).length === 0);

/** Object fields read by the import (creationTimeUnix / lastUpdateTimeUnix are accepted and set by the server, as Weaviate sets them). */
const OBJECT_FIELDS = new Set(["class", "id", "properties", "vector", "vectors", "tenant", "creationTimeUnix", "lastUpdateTimeUnix"]);

/**
 * What is wrong with the top-level fields of an object body (`POST /v1/objects`, `PUT` / `PATCH
 * /v1/objects/{class}/{id}`, `POST /v1/objects/validate`, an item of `POST /v1/batch/objects`).
 * @returns null when every field is read (or `raw` is not an object: the import answers that in Weaviate's words),
 * else the message naming the first field that is not.
 */
export function objectBodyError(raw: unknown): string | null {
  if (!isObject(raw)) return null;
  for (const [k, v] of Object.entries(raw)) {
    if (OBJECT_FIELDS.has(k) || v === undefined) continue;
    if ((k === "vectorWeights" || k === "additional") && isEmpty(v)) continue;
    if (k === "vectorWeights") return "invalid object: vectorWeights is not supported by OpenBatch (it weighs words for text2vec-contextionary only): leave it out";
    if (k === "additional") return "invalid object: field 'additional' cannot be written: additional properties are computed by searches, not stored";
    return `invalid object: unknown field '${k}' (an object has class, id, properties, vector, vectors, tenant)`;
  }
  return null;
}

/** What is wrong with an item of `POST /v1/batch/references` beyond from / to / tenant (checked by the import). @returns null when nothing. */
export function referenceBodyError(raw: unknown): string | null {
  if (!isObject(raw)) return null;
  const k = Object.keys(raw).find((key) => raw[key] !== undefined && key !== "from" && key !== "to" && key !== "tenant");
  return k === undefined ? null : `invalid reference: unknown field '${k}' (a batch reference has from, to, tenant)`;
}

/**
 * What is wrong with the fields of a `DELETE /v1/batch/objects` body (`{match: {class, where}, output, dryRun}`);
 * Weaviate's `deletionTimeUnixMilli` is refused as not served. @returns null when nothing.
 */
export function batchDeleteBodyError(body: Record<string, unknown>): string | null {
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined || k === "match" || k === "output" || k === "dryRun") continue;
    if (k === "deletionTimeUnixMilli") {
      if (v === null) continue;
      return "validate: deletionTimeUnixMilli is not supported by OpenBatch: objects are deleted at the time of the request";
    }
    return `validate: unknown field '${k}' (a batch delete has match, output, dryRun)`;
  }
  const match = body.match;
  if (isObject(match)) {
    const k = Object.keys(match).find((key) => match[key] !== undefined && key !== "class" && key !== "where");
    if (k !== undefined) return `validate: match: field '${k}' is not a field of match (class, where)`;
  }
  return null;
}

/** What is wrong with a shard status body (`PUT /v1/schema/{class}/shards/{shard}`: `{status}`). @returns null when nothing. */
export function shardStatusBodyError(raw: unknown): string | null {
  if (!isObject(raw)) return null;
  const k = Object.keys(raw).find((key) => raw[key] !== undefined && key !== "status");
  return k === undefined ? null : `shard status: unknown field '${k}' (the body is {"status": "READY" | "READONLY"})`;
}
