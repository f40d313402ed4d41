import { publicOrigin } from "../public-url.js";
import { Readable } from "node:stream";
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { invalidRequest, notFound } from "../../core/errors.js";
import type { Engine } from "../../engine/engine.js";
import { batchModeOf, gatewayOf } from "../auth.js";
import { parseQuery } from "../query.js";
import { anthropicRequestId } from "./errors.js";
import { fromAnthropicId, renderMessageBatch, renderMessageResult, toAnthropicId } from "./render.js";

const createBody = z.strictObject({
  requests: z
    .array(
      z.strictObject({
        custom_id: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '-' or '_'"),
        params: z.looseObject({ model: z.string().min(1), max_tokens: z.number().int().positive(), messages: z.array(z.unknown()).min(1) }),
      }),
    )
    .min(1)
    .max(100_000),
});

const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  after_id: z.string().optional(),
  before_id: z.string().optional(),
  beta: z.string().optional(),
});

const origin = publicOrigin;

/** Every path of the Anthropic dialect starts so (its errors are rendered in Anthropic's shape, see api/server.ts). */
const isAnthropicPath = (url: string) => url.startsWith("/v1/messages");

/** Headers the SDK sends for `workspace_id` / `user_profile_id`; OpenBatch has neither, so it refuses them rather than ignore them. */
const UNSUPPORTED_HEADERS: Record<string, { param: string; what: string }> = {
  "anthropic-workspace-id": { param: "workspace_id", what: "workspaces" },
  "anthropic-user-profile-id": { param: "user_profile_id", what: "user profiles" },
};

/**
 * Anthropic Message Batches at `/v1/messages/batches` for `@anthropic-ai/sdk`: create (runs at once), retrieve, list
 * (newest first, `after_id`/`before_id`), cancel, delete (once ended), and results as JSONL at an absolute
 * `results_url`. Errors come in Anthropic's shape with a `request_id` (see api/server.ts), every answer on
 * `/v1/messages…` has a `request-id` header, and what OpenBatch cannot honour (unknown body fields, the SDK's
 * `workspace_id`/`user_profile_id` headers) is refused with a 400 rather than ignored.
 */
export const anthropicBatchesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  // Every answer on /v1/messages… carries a `request-id` (the SDK reads it into `_request_id` and APIError.requestID),
  // the one the error body names. onSend also runs for errors thrown by earlier hooks (auth) and for the server's
  // 404 handler, because this plugin's hooks live on the root instance (skip-override, below).
  app.addHook("onSend", async (req, reply, payload) => {
    if (!isAnthropicPath(req.url)) return payload;
    reply.header("request-id", anthropicRequestId(req));
    // The SDK retries a 409 by default; ours (delete before the batch ended) cannot succeed on a quick retry.
    if (reply.statusCode === 409) reply.header("x-should-retry", "false");
    return payload;
  });
  app.addHook("onRequest", async (req) => {
    if (!isAnthropicPath(req.url)) return;
    req.log = req.log.child({ request_id: anthropicRequestId(req) });
    for (const [header, { param, what }] of Object.entries(UNSUPPORTED_HEADERS)) {
      if (req.headers[header] !== undefined) throw invalidRequest(`OpenBatch has no ${what}; leave '${param}' (header ${header}) out.`, param);
    }
  });

  const own = async (caller: string | null, anthropicId: string) => {
    const batch = await engine.getBatch(caller, fromAnthropicId(anthropicId)).catch(() => null);
    if (!batch || batch.dialect !== "anthropic") throw notFound(`No message batch with id ${anthropicId}.`);
    return batch;
  };

  app.post("/v1/messages/batches", async (req) => {
    const parsed = createBody.safeParse(req.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const path = issue.path.join(".");
      throw invalidRequest(path ? `${path}: ${issue.message}` : issue.message, path || null);
    }
    const requests = parsed.data.requests;
    const models = new Set(requests.map((r) => r.params.model));
    if (models.size > 1) {
      throw invalidRequest(`OpenBatch runs one model per batch; this one names ${[...models].join(", ")}. Send one batch per model.`, "requests");
    }
    const batch = await engine.createInlineBatch(req.caller, {
      dialect: "anthropic",
      endpoint: "/v1/messages",
      model: requests[0]!.params.model,
      requests: requests.map((r) => ({ custom_id: r.custom_id, body: r.params })),
      start: true,
      gateway: gatewayOf(req.headers),
      batchMode: batchModeOf(req.headers),
    });
    return renderMessageBatch(batch, origin(req));
  });

  app.get("/v1/messages/batches", async (req) => {
    const q = parseQuery(listQuery, req.query);
    const page = await engine.listBatches(req.caller, {
      limit: q.limit,
      after: q.after_id && fromAnthropicId(q.after_id),
      before: q.before_id && fromAnthropicId(q.before_id),
      dialects: ["anthropic"],
    });
    const data = page.data.map((b) => renderMessageBatch(b, origin(req)));
    return { data, has_more: page.has_more, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
  });

  app.get<{ Params: { id: string } }>("/v1/messages/batches/:id", async (req) => renderMessageBatch(await own(req.caller, req.params.id), origin(req)));

  app.post<{ Params: { id: string } }>("/v1/messages/batches/:id/cancel", async (req) => {
    const batch = await own(req.caller, req.params.id);
    return renderMessageBatch(await engine.cancelBatch(req.caller, batch.id), origin(req));
  });

  app.delete<{ Params: { id: string } }>("/v1/messages/batches/:id", async (req) => {
    const batch = await own(req.caller, req.params.id);
    await engine.deleteBatch(req.caller, batch.id);
    return { id: toAnthropicId(batch.id), type: "message_batch_deleted" };
  });

  app.get<{ Params: { id: string } }>("/v1/messages/batches/:id/results", async (req, reply) => {
    const batch = await own(req.caller, req.params.id);
    if (renderMessageBatch(batch, "").processing_status !== "ended") {
      throw invalidRequest(`Message batch ${req.params.id} has not ended yet; its results_url appears once it has.`);
    }
    const lines = Readable.from(
      (async function* () {
        for await (const item of engine.allItems(req.caller, batch.id)) yield renderMessageResult(item);
      })(),
      // Bytes, not 16 objects, wait for a slow client: with large results that bounds what is held to about one.
      { objectMode: false },
    );
    return reply.header("content-type", "application/binary").send(lines);
  });
};
// Like fastify-plugin: the hooks above must also see the root 404 handler's answers on /v1/messages….
(anthropicBatchesRoutes as unknown as Record<symbol, boolean>)[Symbol.for("skip-override")] = true;
