import type { FastifyPluginAsync } from "fastify";
import type { CollectionService } from "../../collections/collection-service.js";
import { unprocessable } from "../../collections/errors.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Result of one item: `{status:"SUCCESS"}` or `{status:"FAILED", errors:{error:[{message}]}}`. */
const result = (error: string | null) => (error === null ? { status: "SUCCESS" } : { status: "FAILED", errors: { error: [{ message: error }] } });

/**
 * Batches can be far larger than other requests (1,000 objects of 1,536 floats is ~30 MB of JSON), but a body is
 * parsed from one string, and V8's strings stop at 2^29 − 24 characters (~512 MiB): a limit at or above that let one
 * request crash the process. 256 MiB keeps a wide margin; a larger import is sent in several batches, as clients do.
 */
export const BATCH_BODY_LIMIT = 256 * 1024 * 1024;

/**
 * Weaviate's batch endpoints:
 * - `POST /v1/batch/objects` `{objects:[…]}` → 200 with one element per object in input order, the object echoed
 *   plus `result` (items fail one by one; 422 for an empty list);
 * - `POST /v1/batch/references` `[{from, to}]` → `[{from, to, result}]` (422 for an empty list);
 * - `DELETE /v1/batch/objects` `{match:{class, where}, output, dryRun}` → `{match, output, dryRun, results}`.
 * With API keys on, objects and references of classes the caller may not write fail one by one with Weaviate's 403
 * message; a batch delete of such a class answers 403 (see collections/access.ts).
 */
export const weaviateBatchRoutes: FastifyPluginAsync<{ collections: CollectionService }> = async (app, { collections }) => {
  app.post("/v1/batch/objects", { bodyLimit: BATCH_BODY_LIMIT }, async (req) => {
    const body = req.body;
    const objects = isObject(body) ? body.objects : undefined;
    if (!Array.isArray(objects) || objects.length === 0) throw unprocessable("invalid param 'objects': cannot be empty, need at least one object for batching");
    const results = await collections.batchObjects(req.caller, objects);
    return results.map((r) => ({ ...r.object, result: result(r.error) }));
  });

  app.post("/v1/batch/references", { bodyLimit: BATCH_BODY_LIMIT }, async (req) => {
    const body = req.body;
    if (!Array.isArray(body) || body.length === 0) throw unprocessable("invalid params: length cannot be 0, need at least one reference for batching");
    const results = await collections.batchReferences(req.caller, body);
    return results.map((r) => ({ from: r.from, to: r.to, result: result(r.error) }));
  });

  app.delete("/v1/batch/objects", async (req) => {
    const body = isObject(req.body) ? req.body : {};
    const match = body.match;
    if (!isObject(match) || typeof match.class !== "string" || !match.class) throw unprocessable("validate: match.class must be set");
    const output = body.output ?? "minimal";
    if (output !== "minimal" && output !== "verbose") throw unprocessable(`validate: output must be "minimal" or "verbose", got ${JSON.stringify(output)}`);
    if (body.dryRun !== undefined && typeof body.dryRun !== "boolean") throw unprocessable("validate: dryRun must be a boolean");
    const dryRun = body.dryRun === true;
    const r = await collections.deleteObjects(req.caller, { class: match.class, where: match.where, dryRun, verbose: output === "verbose" });
    const results: Record<string, unknown> = { matches: r.matches, limit: r.limit, successful: r.successful, failed: r.failed };
    if (output === "verbose" || r.objects.length) results.objects = r.objects;
    return { match, output, dryRun, results };
  });
};
