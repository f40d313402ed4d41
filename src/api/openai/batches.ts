import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { invalidRequest } from "../../core/errors.js";
import type { Engine } from "../../engine/engine.js";
import { gatewayOf } from "../auth.js";
import { parseQuery } from "../query.js";
import { renderBatch, renderList } from "./render.js";

const listQuery = z.object({
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

/** OpenAI Batches API: `POST/GET /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`. */
export const openAIBatchesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  app.post("/v1/batches", async (req) => {
    const body = req.body;
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalidRequest("The request body must be a JSON object.");
    const b = body as Record<string, unknown>;
    const batch = await engine.createBatch(req.caller, {
      input_file_id: b.input_file_id,
      endpoint: b.endpoint,
      completion_window: b.completion_window ?? "24h",
      metadata: b.metadata,
      priority: b.priority,
      dialect: "openai",
      gateway: gatewayOf(req.headers),
    });
    return renderBatch(batch);
  });

  app.get("/v1/batches", async (req) => {
    const page = await engine.listBatches(req.caller, parseQuery(listQuery, req.query));
    return renderList(page.data.map(renderBatch), page.has_more);
  });

  app.get<{ Params: { id: string } }>("/v1/batches/:id", async (req) => renderBatch(await engine.getBatch(req.caller, req.params.id)));

  app.post<{ Params: { id: string } }>("/v1/batches/:id/cancel", async (req) => renderBatch(await engine.cancelBatch(req.caller, req.params.id)));
};
