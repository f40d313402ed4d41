import type { FastifyPluginAsync } from "fastify";
import { Readable } from "node:stream";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import type { CollectionService } from "../../collections/collection-service.js";
import { unprocessable } from "../../collections/errors.js";
import { useStreamingJson } from "../json-stream.js";
import { checkReplicationParams } from "./replication-params.js";
import { batchDeleteBodyError, objectBodyError, referenceBodyError } from "./rest-bodies.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Result of one item: `{status:"SUCCESS"}` or `{status:"FAILED", errors:{error:[{message}]}}`. */
const result = (error: string | null) => (error === null ? { status: "SUCCESS" } : { status: "FAILED", errors: { error: [{ message: error }] } });

/**
 * Runs `run` on the items `refuse` finds nothing wrong with; the others fail alone with its message, as an import
 * failure would. @returns one result per item, in input order.
 */
async function withRefused<T extends { error: string | null }>(items: unknown[], refuse: (item: unknown) => string | null, failed: (item: unknown, error: string) => T, run: (items: unknown[]) => Promise<T[]>): Promise<T[]> {
  const errors = items.map(refuse);
  if (errors.every((e) => e === null)) return run(items);
  const kept = items.filter((_, i) => errors[i] === null);
  const results = kept.length ? await run(kept) : [];
  let k = 0;
  return items.map((item, i) => (errors[i] === null ? results[k++]! : failed(item, errors[i]!)));
}

/**
 * Batches can be far larger than other requests (1,000 objects of 1,536 floats is ~30 MB of JSON), but a body is
 * parsed from one string, and V8's strings stop at 2^29 − 24 characters (~512 MiB): a limit at or above that let one
 * request crash the process. 256 MiB keeps a wide margin; a larger import is sent in several batches, as clients do.
 */
export const BATCH_BODY_LIMIT = 256 * 1024 * 1024;

/**
 * Answer elements JSON-encoded between two yields to the event loop. An answer echoes each object with its vector:
 * 20,000 objects of 128 floats are 28 MB, whose JSON.stringify at once held the loop for ~270 ms. 500 such objects
 * are ~0.7 MB, a few ms.
 */
const ANSWER_SLICE = 500;

/**
 * A JSON array answer as a stream: `items` are mapped and encoded ANSWER_SLICE at a time, the loop free between
 * slices. Smaller answers are sent whole (with a content-length), as before.
 */
function jsonArrayAnswer<T>(items: readonly T[], map: (item: T) => unknown): unknown {
  if (items.length <= ANSWER_SLICE) return items.map(map);
  return Readable.from(
    (async function* () {
      for (let i = 0; i < items.length; i += ANSWER_SLICE) {
        if (i > 0) await yieldToLoop();
        const slice = JSON.stringify(items.slice(i, i + ANSWER_SLICE).map(map));
        // Each slice is an array's text: its brackets become the answer's first and last, commas between slices.
        yield (i === 0 ? "[" : ",") + slice.slice(1, -1) + (i + ANSWER_SLICE >= items.length ? "]" : "");
      }
    })(),
    { objectMode: false },
  );
}

/**
 * Weaviate's batch endpoints:
 * - `POST /v1/batch/objects` `{objects:[…]}` → 200 with one element per object in input order, the object echoed
 *   plus `result` (items fail one by one; 422 for an empty list);
 * - `POST /v1/batch/references` `[{from, to}]` → `[{from, to, result}]` (422 for an empty list);
 * - `DELETE /v1/batch/objects` `{match:{class, where}, output, dryRun}` → `{match, output, dryRun, results}`.
 * With API keys on, objects and references of classes the caller may not write fail one by one with Weaviate's 403
 * message; a batch delete of such a class answers 403 (see collections/access.ts). Fields the import does not read
 * fail their item (an unknown key of a batch delete body fails the request), and bad `consistency_level` /
 * `node_name` values the request (rest-bodies.ts, replication-params.ts).
 *
 * Bodies are parsed as they arrive, object by object, with the event loop free between slices (api/json-stream.ts),
 * and answers of more than ANSWER_SLICE elements are streamed in slices: a 26 MB batch never holds the loop for the
 * 160 ms of one JSON.parse, nor its 28 MB answer for the 270 ms of one JSON.stringify.
 */
export const weaviateBatchRoutes: FastifyPluginAsync<{ collections: CollectionService }> = async (app, { collections }) => {
  // This plugin's scope only: other routes keep the server's parser.
  useStreamingJson(app, { splitKeys: ["objects"] });
  app.addHook("preHandler", async (req) => checkReplicationParams(req.query));

  app.post("/v1/batch/objects", { bodyLimit: BATCH_BODY_LIMIT }, async (req, reply) => {
    const body = req.body;
    const objects = isObject(body) ? body.objects : undefined;
    if (!Array.isArray(objects) || objects.length === 0) throw unprocessable("invalid param 'objects': cannot be empty, need at least one object for batching");
    const results = await withRefused(objects, objectBodyError, (o, error) => ({ object: { ...(o as Record<string, unknown>) }, error }), (kept) => collections.batchObjects(req.caller, kept));
    const answer = jsonArrayAnswer(results, (r) => ({ ...r.object, result: result(r.error) }));
    return answer instanceof Readable ? reply.type("application/json; charset=utf-8").send(answer) : answer;
  });

  app.post("/v1/batch/references", { bodyLimit: BATCH_BODY_LIMIT }, async (req, reply) => {
    const body = req.body;
    if (!Array.isArray(body) || body.length === 0) throw unprocessable("invalid params: length cannot be 0, need at least one reference for batching");
    const results = await withRefused(body, referenceBodyError, (r, error) => ({ from: (r as { from?: unknown }).from, to: (r as { to?: unknown }).to, error }), (kept) => collections.batchReferences(req.caller, kept));
    const answer = jsonArrayAnswer(results, (r) => ({ from: r.from, to: r.to, result: result(r.error) }));
    return answer instanceof Readable ? reply.type("application/json; charset=utf-8").send(answer) : answer;
  });

  app.delete<{ Querystring: { tenant?: string } }>("/v1/batch/objects", async (req) => {
    const body = isObject(req.body) ? req.body : {};
    const bodyError = batchDeleteBodyError(body);
    if (bodyError) throw unprocessable(bodyError);
    // `?tenant=` names the tenant of a multi-tenant class (collections/tenants.ts).
    const tenant = req.query.tenant || undefined;
    const match = body.match;
    if (!isObject(match) || typeof match.class !== "string" || !match.class) throw unprocessable("validate: match.class must be set");
    const output = body.output ?? "minimal";
    if (output !== "minimal" && output !== "verbose") throw unprocessable(`validate: output must be "minimal" or "verbose", got ${JSON.stringify(output)}`);
    if (body.dryRun !== undefined && typeof body.dryRun !== "boolean") throw unprocessable("validate: dryRun must be a boolean");
    const dryRun = body.dryRun === true;
    const r = await collections.deleteObjects(req.caller, { class: match.class, tenant, where: match.where, dryRun, verbose: output === "verbose" });
    const results: Record<string, unknown> = { matches: r.matches, limit: r.limit, successful: r.successful, failed: r.failed };
    if (output === "verbose" || r.objects.length) results.objects = r.objects;
    return { match, output, dryRun, results };
  });
};
