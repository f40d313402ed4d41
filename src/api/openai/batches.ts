import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { invalidRequest } from "../../core/errors.js";
import type { Engine } from "../../engine/engine.js";
import { batchModeOf, gatewayOf } from "../auth.js";
import { parseQuery } from "../query.js";
import type { BatchView } from "../../core/batch.js";
import { createGrokBatch } from "../grok/batches.js";
import { grokStatus, renderGrokBatch } from "../grok/render.js";
import { renderBatch, renderList } from "./render.js";

const listQuery = z.object({
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** Seed 001 filter (its status names or ours). */
  status: z.string().optional(),
});

/** Batches this listing shows: those made through `/v1/batches` (OpenAI's and seed 001's). */
const LISTED_HERE = ["openai", "grok"];

/** A batch in the dialect it was created in: seed 001 batches share these routes with OpenAI's. */
function render(b: BatchView) {
  return b.dialect === "grok" ? renderGrokBatch(b) : renderBatch(b);
}

/**
 * OpenAI Batches API: `POST/GET /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`. Seed 001
 * batches live on the same paths (see api/grok); each batch is rendered in the dialect it was created in.
 */
export const openAIBatchesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  app.post("/v1/batches", async (req) => {
    const body = req.body;
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalidRequest("The request body must be a JSON object.");
    const b = body as Record<string, unknown>;
    // Seed 001 shares this route: its batches are named and filled later, so its body names no input file.
    if (!("input_file_id" in b) && "name" in b) return createGrokBatch(engine, req.caller, b, req.headers);
    const batch = await engine.createBatch(req.caller, {
      input_file_id: b.input_file_id,
      endpoint: b.endpoint,
      completion_window: b.completion_window ?? "24h",
      metadata: b.metadata,
      priority: b.priority,
      output_expires_after: b.output_expires_after,
      dialect: "openai",
      gateway: gatewayOf(req.headers),
      batchMode: batchModeOf(req.headers),
    });
    return renderBatch(batch);
  });

  app.get("/v1/batches", async (req) => {
    const q = parseQuery(listQuery, req.query);
    if (!q.status) {
      const page = await engine.listBatches(req.caller, { after: q.after, limit: q.limit, dialects: LISTED_HERE });
      return renderList(page.data.map(render), page.has_more);
    }
    // Seed 001's status filter: page through until `limit` batches match.
    const data: ReturnType<typeof render>[] = [];
    let after = q.after;
    for (;;) {
      const page = await engine.listBatches(req.caller, { after, limit: 100, dialects: LISTED_HERE });
      for (const b of page.data) {
        if (data.length === q.limit) return renderList(data, true);
        if (grokStatus(b) === q.status || b.status === q.status) data.push(render(b));
      }
      if (!page.has_more) return renderList(data, false);
      after = page.data[page.data.length - 1]!.id;
    }
  });

  app.get<{ Params: { id: string } }>("/v1/batches/:id", async (req) => render(await engine.getBatch(req.caller, req.params.id)));

  app.post<{ Params: { id: string } }>("/v1/batches/:id/cancel", async (req) => render(await engine.cancelBatch(req.caller, req.params.id)));

  // Our extension: a new batch of the failed, expired and cancelled requests of an ended one.
  app.post<{ Params: { id: string } }>("/v1/batches/:id/retry", async (req) => render(await engine.retryBatch(req.caller, req.params.id, gatewayOf(req.headers))));
};
