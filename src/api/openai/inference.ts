import type { FastifyPluginAsync } from "fastify";
import type { BatchEndpoint } from "../../core/batch.js";
import type { Engine } from "../../engine/engine.js";
import { gatewayOf } from "../auth.js";

const SYNC_ENDPOINTS: BatchEndpoint[] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

/**
 * The OpenAI inference endpoints, answered synchronously through the same providers as batches (gateway mode), and
 * `GET /v1/models` listing what is routable (`{object:"list", data:[{id, object:"model", created, owned_by}]}`).
 */
export const openAIInferenceRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  for (const endpoint of SYNC_ENDPOINTS) {
    app.post(endpoint, async (req, reply) => {
      const aborted = new AbortController();
      // The response closing before it finished means the client went away: stop the upstream work too.
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) aborted.abort(new Error("client went away"));
      });
      const res = await engine.infer(endpoint, req.body, gatewayOf(req.headers), aborted.signal);
      return reply.status(res.status).header("content-type", "application/json").send(res.body);
    });
  }

  app.get("/v1/models", async () => ({
    object: "list",
    data: engine.listModels().map((id) => ({ id, object: "model", created: 0, owned_by: "openbatch" })),
  }));
};
