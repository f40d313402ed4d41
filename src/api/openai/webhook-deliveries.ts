import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import type { Engine } from "../../engine/engine.js";
import type { WebhookDeliveryLog } from "../../store/webhook-outbox.js";
import { fromAnthropicId } from "../anthropic/render.js";
import { batchIdOf } from "../gemini/render.js";
import { parseQuery } from "../query.js";
import { renderList } from "./render.js";

const listQuery = z.object({
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

const seconds = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

/** A URL without its query string or credentials: those may hold a receiver's token, and the log only needs the endpoint. */
function endpointOf(url: string): string {
  const u = new URL(url);
  return u.origin + u.pathname;
}

/**
 * One delivery as our extension renders it (times in unix seconds, like OpenAI's): `id` is the `webhook-id` header
 * the receiver saw on every attempt, `event_id` the payload's `id`.
 */
export function renderWebhookDelivery(d: WebhookDeliveryLog) {
  return {
    object: "webhook_delivery" as const,
    id: d.id,
    event_id: d.event_id,
    event_type: d.event_type,
    batch_id: d.batch_id,
    url: endpointOf(d.url),
    status: d.status,
    created_at: seconds(d.created_at)!,
    next_attempt_at: seconds(d.next_attempt_at),
    attempts: d.attempt_log.map((a) => ({
      attempt: a.attempt,
      attempted_at: seconds(a.attempted_at)!,
      status_code: a.status_code,
      error: a.error,
      next_attempt_at: seconds(a.next_attempt_at),
    })),
  };
}

/**
 * Our extension `GET /v1/batches/{id}/webhook_deliveries`: the delivery log of a batch's end event — one entry per
 * webhook URL, each attempt with its time, the receiver's status or the error, and when the next attempt is due — as
 * an OpenAI list (`after`, `limit` 1–100, default 20). Scoped to the batch's owner like every batch route. Takes a
 * batch id as any dialect shows it (`batch_…`, Anthropic `msgbatch_…`, Gemini `batches/batch_…` URL-encoded).
 */
export const webhookDeliveriesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  app.get<{ Params: { id: string } }>("/v1/batches/:id/webhook_deliveries", async (req) => {
    const q = parseQuery(listQuery, req.query);
    const id = batchIdOf(fromAnthropicId(req.params.id));
    const page = await engine.webhookDeliveries(req.caller, id, q);
    return renderList(page.data.map(renderWebhookDelivery), page.has_more);
  });
};
