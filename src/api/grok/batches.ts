import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { invalidRequest, notFound } from "../../core/errors.js";
import type { Engine, InlineRequest } from "../../engine/engine.js";
import { batchModeOf, gatewayOf } from "../auth.js";
import { parseQuery } from "../query.js";
import { GROK_REQUEST_STATES, renderGrokBatch, renderGrokRequest, renderGrokResult } from "./render.js";

const pageQuery = z.object({
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const requestsQuery = pageQuery.extend({ status: z.enum(["pending", "completed", "failed"]).optional() });

const createBody = z.object({
  name: z.string().min(1).max(256),
  description: z.string().max(2048).optional(),
  model: z.string().min(1),
  endpoint: z.enum(["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]).default("/v1/chat/completions"),
  metadata: z.record(z.string(), z.string()).optional(),
  completion_window: z.string().optional(),
});
const addBody = z.object({ requests: z.array(z.object({ custom_id: z.string().min(1), body: z.record(z.string(), z.unknown()) })).min(1).max(50_000) });

/** Parses a body with zod. @throws OpenBatchError 400 naming the first bad field. */
function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw invalidRequest(`Invalid '${issue.path.join(".") || "body"}': ${issue.message}`, issue.path.join(".") || null);
}

/**
 * Seed 001 batches that are not OpenAI's: create a named batch (`POST /v1/batches` without `input_file_id`, handled by
 * the shared batches route), add requests in many calls, start, list requests by status, read results while it runs.
 */
export const grokBatchesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  const own = async (caller: string | null, id: string) => {
    const batch = await engine.getBatch(caller, id);
    if (batch.dialect !== "grok") throw notFound(`Batch ${id} was created from a file; use the OpenAI Batch API for it.`, "batch_id");
    return batch;
  };

  app.post<{ Params: { id: string } }>("/v1/batches/:id/requests", async (req) => {
    await own(req.caller, req.params.id);
    const { requests } = parseBody(addBody, req.body);
    return renderGrokBatch(await engine.addRequests(req.caller, req.params.id, requests as InlineRequest[]));
  });

  app.post<{ Params: { id: string } }>("/v1/batches/:id/start", async (req) => {
    await own(req.caller, req.params.id);
    return renderGrokBatch(await engine.startBatch(req.caller, req.params.id));
  });

  app.get<{ Params: { id: string } }>("/v1/batches/:id/requests", async (req) => {
    await own(req.caller, req.params.id);
    const q = parseQuery(requestsQuery, req.query);
    const page = await engine.listItems(req.caller, req.params.id, { after: q.after, limit: q.limit, states: q.status ? GROK_REQUEST_STATES[q.status] : undefined });
    return { object: "list", data: page.data.map(renderGrokRequest), has_more: page.has_more };
  });

  app.get<{ Params: { id: string } }>("/v1/batches/:id/results", async (req) => {
    await own(req.caller, req.params.id);
    const q = parseQuery(pageQuery, req.query);
    const page = await engine.listItems(req.caller, req.params.id, { after: q.after, limit: q.limit, states: [...GROK_REQUEST_STATES.completed, ...GROK_REQUEST_STATES.failed] });
    return { object: "list", data: page.data.map(renderGrokResult), has_more: page.has_more };
  });
};

/** Creates a seed 001 batch from a `POST /v1/batches` body that names no input file. */
export async function createGrokBatch(engine: Engine, caller: string | null, body: unknown, headers: import("node:http").IncomingHttpHeaders) {
  const b = parseBody(createBody, body);
  const batch = await engine.createInlineBatch(caller, {
    dialect: "grok",
    endpoint: b.endpoint,
    model: b.model,
    name: b.name,
    description: b.description ?? null,
    metadata: b.metadata ?? null,
    completion_window: b.completion_window,
    start: false,
    gateway: gatewayOf(headers),
    batchMode: batchModeOf(headers),
  });
  return renderGrokBatch(batch);
}
