import { Readable } from "node:stream";
import type { FastifyPluginAsync } from "fastify";
import type { BatchEndpoint } from "../../core/batch.js";
import type { Engine } from "../../engine/engine.js";
import { gatewayOf } from "../auth.js";
import { useStreamingJson } from "../json-stream.js";
import { renderOpenAIError } from "./errors.js";

const SYNC_ENDPOINTS: BatchEndpoint[] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

/**
 * The OpenAI inference endpoints, answered synchronously through the same providers as batches (gateway mode), and
 * `GET /v1/models` listing what is routable (`{object:"list", data:[{id, object:"model", created, owned_by}]}`).
 *
 * `stream: true` on chat and completions answers `text/event-stream`: OpenAI's `data: {chunk}` events ending with
 * `data: [DONE]`, written as the provider produces them. An error before the first event is a JSON error with its
 * status, as without streaming; one after it is a last `data: {"error":{message,type,param,code}}` event, then the
 * response ends (as OpenAI does). A client that goes away aborts the upstream call.
 */
export const openAIInferenceRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  // Bodies (30 MB of embeddings input is common) are parsed as they arrive, input by input, with the event loop free
  // between slices, and kept as text so the engine sends them on without re-encoding (api/json-stream.ts).
  useStreamingJson(app, { splitKeys: ["input", "messages", "prompt"], keepText: true });
  for (const endpoint of SYNC_ENDPOINTS) {
    app.post(endpoint, async (req, reply) => {
      const aborted = new AbortController();
      // The response closing before it finished means the client went away: stop the upstream work too.
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) aborted.abort(new Error("client went away"));
      });
      const res = await engine.infer(endpoint, req.body, gatewayOf(req.headers), aborted.signal);
      if (res.kind === "answer") return reply.status(res.status).header("content-type", "application/json").send(res.body);
      return reply
        .status(res.status)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        // Proxies such as nginx must pass each event on at once, not buffer the response.
        .header("x-accel-buffering", "no")
        .send(Readable.from(withErrorEvent(res.events, aborted.signal)));
    });
  }

  app.get("/v1/models", async () => ({
    object: "list",
    data: engine.listModels().map((id) => ({ id, object: "model", created: 0, owned_by: "openbatch" })),
  }));
};

/**
 * The events as they come; a failure midway becomes one last `data: {"error":…}` event (what the OpenAI SDK raises
 * as an APIError), unless the client already left. Stopping early (the client left) stops the source too.
 */
async function* withErrorEvent(events: AsyncIterable<string | Uint8Array>, signal: AbortSignal): AsyncGenerator<string | Uint8Array, void, undefined> {
  try {
    for await (const piece of events) yield piece;
  } catch (err) {
    if (signal.aborted) return;
    yield `data: ${JSON.stringify(renderOpenAIError(err).body)}\n\n`;
  }
}
