import { createHmac, randomBytes } from "node:crypto";
import type { Config } from "../core/config.js";
import type { WebhookDelivery, WebhookDeliveryStatus, WebhookEvent, WebhookOutbox } from "../store/webhook-outbox.js";
import type { Log } from "./log.js";
import { backoffMs, retryAfterMs } from "./retry-policy.js";

/** A configured webhook (config `webhooks[]`, secrets resolved). */
export type WebhookTarget = Config["webhooks"][number];
/** Delivery settings (config `webhookDelivery`). Times in ms. */
export type WebhookDeliverySettings = Config["webhookDelivery"];

/**
 * The `webhook-signature` header value for one attempt, per Standard Webhooks as OpenAI signs (and the openai SDK's
 * `webhooks.unwrap` verifies): `v1,` + base64 HMAC-SHA256 over `"<webhook-id>.<webhook-timestamp>.<body>"`, keyed
 * with the base64-decoded part of the secret after `whsec_`.
 * @param secret `whsec_<base64>` (config validation guarantees the form). @param timestamp unix seconds, as sent in
 * `webhook-timestamp`. @param body the exact bytes sent.
 */
export function signWebhook(secret: string, webhookId: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return "v1," + createHmac("sha256", key).update(`${webhookId}.${timestamp}.${body}`).digest("base64");
}

/**
 * A batch id as the batch's own API renders it (the payload's `data.id`): Anthropic `msgbatch_…`, Gemini
 * `batches/batch_…`, everything else (OpenAI, seed 001) `batch_…`. Mirrors api/anthropic/render.ts and
 * api/gemini/render.ts, which the engine may not import.
 */
export function renderWebhookBatchId(dialect: string, batchId: string): string {
  if (dialect === "anthropic") return "msg" + batchId;
  if (dialect === "gemini" || dialect === "gemini-seed") return "batches/" + batchId;
  return batchId;
}

/** The JSON text of an event (OpenAI's `batch.*` webhook event): `{id, object, type, created_at (unix s), data: {id}}`. */
export function renderWebhookEvent(event: WebhookEvent): string {
  return JSON.stringify({
    id: event.id,
    object: "event",
    type: event.type,
    created_at: Math.floor(event.created_at / 1000),
    data: { id: renderWebhookBatchId(event.dialect, event.batch_id) },
  });
}

/** Events fanned out and deliveries claimed per pass, at most. */
const PAGE = 100;
/**
 * Extra time a claim lasts beyond the call's timeout. A claim left by a crash is released when the process starts
 * again (releaseClaims), so this only bounds a claim whose attempt was never recorded while the process lives on.
 */
const CLAIM_MARGIN_MS = 60_000;
/** Characters of a receiver's error body kept in the delivery log. */
const ERROR_BODY_CHARS = 200;

/** Raised into an attempt's signal when the sender stops, so the attempt is logged as interrupted, not failed. */
class SenderStopped extends Error {}

/**
 * Sends batch events to the configured webhooks from the store's outbox, on its own timer beside the dispatcher.
 * Each pass fans queued events out into one delivery per webhook subscribed to the event type, then claims due
 * deliveries up to `concurrency` and POSTs them, each with a per-attempt timeout. A non-2xx answer, a network error
 * or a timeout is retried with exponential backoff and jitter (a receiver's Retry-After is a floor) until
 * `maxAgeMs` after the event, then given up. Every attempt of a delivery carries the same `webhook-id` and body, with
 * a fresh `webhook-timestamp` and signature (receivers refuse timestamps older than 5 minutes). Everything lives in
 * the store, so deliveries pending when the process stops resume when it starts again, and one in flight at a crash
 * is sent again first thing: at-least-once.
 */
export class WebhookSender {
  private readonly byUrl: Map<string, WebhookTarget>;
  private readonly inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private claimsReleased = false;

  /** @param pollMs longest wait between passes, ms (the engine's poll interval). */
  constructor(
    private readonly outbox: WebhookOutbox,
    targets: readonly WebhookTarget[],
    private readonly settings: WebhookDeliverySettings,
    private readonly log: Log,
    private readonly pollMs: number,
  ) {
    this.byUrl = new Map(targets.map((t) => [t.url, t]));
  }

  start(): void {
    this.stopped = false;
    this.wake();
  }

  /**
   * Stops passes and interrupts attempts in flight; each interrupted attempt is logged and its delivery is due again
   * at once, so the next start sends it first. Resolves once nothing more will be written.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // The pass in progress may still start attempts; they are interrupted with the rest.
    await this.pass;
    for (const { controller } of this.inFlight.values()) controller.abort(new SenderStopped("The server stopped before the receiver answered."));
    await Promise.all([...this.inFlight.values()].map((f) => f.done));
  }

  /** Asks for a pass soon (an attempt ended, so a slot is free). */
  wake(): void {
    if (this.stopped) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), 0);
  }

  private run(): void {
    this.timer = null;
    if (this.stopped) return;
    this.pass = this.onePass()
      .catch((err) => this.log.error({ err }, "webhook pass failed; it will be tried again"))
      .finally(() => {
        this.pass = null;
        if (this.stopped) return;
        const soon = this.again;
        this.again = false;
        this.timer = setTimeout(() => this.run(), soon ? 0 : this.pollMs);
      });
  }

  private async onePass(): Promise<void> {
    if (!this.claimsReleased) {
      // One process owns the store: a claim still held was this process's before a crash; send it now.
      const released = await this.outbox.releaseClaims(Date.now());
      if (released > 0) this.log.info({ released }, "webhook deliveries in flight when the previous process stopped are due again");
      this.claimsReleased = true;
    }
    for (const event of await this.outbox.pendingEvents(PAGE)) {
      const targets = [...this.byUrl.values()]
        .filter((t) => t.events.includes(event.type))
        .map((t) => ({ id: "wh_" + randomBytes(16).toString("hex"), url: t.url, body: renderWebhookEvent(event) }));
      await this.outbox.fanOut(event, targets, Date.now());
    }
    const free = Math.min(PAGE, this.settings.concurrency - this.inFlight.size);
    if (free <= 0 || this.stopped) return;
    const now = Date.now();
    const due = await this.outbox.claimDue(now, free, now + this.settings.timeoutMs + CLAIM_MARGIN_MS);
    for (const d of due) {
      const controller = new AbortController();
      const done = this.attempt(d, controller).finally(() => {
        this.inFlight.delete(d.id);
        this.wake();
      });
      this.inFlight.set(d.id, { controller, done });
    }
    // A full page may mean more are due now.
    if (due.length === free) this.again = true;
  }

  /** Makes one attempt of a claimed delivery and logs it with what comes next. Never throws. */
  private async attempt(d: WebhookDelivery, controller: AbortController): Promise<void> {
    try {
      const target = this.byUrl.get(d.url);
      const attemptedAt = Date.now();
      if (!target) {
        await this.outbox.recordAttempt(d.id, { attempted_at: attemptedAt, status_code: null, error: "This webhook URL is no longer in the config.", next_attempt_at: null }, "failed");
        return;
      }
      const { statusCode, error, retryAfter } = await this.post(d, target, controller);
      let status: WebhookDeliveryStatus;
      let next: number | null = null;
      const deadline = d.created_at + this.settings.maxAgeMs;
      const end = Date.now();
      if (error === null) status = "delivered";
      else if (controller.signal.reason instanceof SenderStopped) (status = "pending"), (next = end);
      else if (end >= deadline) status = "failed";
      else {
        status = "pending";
        const settings = { maxAttempts: Infinity, baseDelayMs: this.settings.baseDelayMs, maxDelayMs: this.settings.maxDelayMs };
        // One last attempt at the deadline rather than none after it.
        next = Math.min(deadline, end + backoffMs(d.attempts + 1, settings, retryAfter));
      }
      await this.outbox.recordAttempt(d.id, { attempted_at: attemptedAt, status_code: statusCode, error, next_attempt_at: next }, status);
      if (status === "failed") this.log.warn({ delivery: d.id, url: d.url, event: d.event_id, attempts: d.attempts + 1, error }, "webhook delivery given up");
    } catch (err) {
      // Its claim lapses and another pass tries again.
      this.log.error({ err, delivery: d.id }, "webhook attempt could not be recorded");
    }
  }

  /** POSTs one signed attempt. @returns the receiver's status, and why it does not count as delivered (null when 2xx). */
  private async post(d: WebhookDelivery, target: WebhookTarget, controller: AbortController): Promise<{ statusCode: number | null; error: string | null; retryAfter: number | null }> {
    const timestamp = Math.floor(Date.now() / 1000);
    const timeout = setTimeout(() => controller.abort(new Error(`No answer within ${this.settings.timeoutMs} ms.`)), this.settings.timeoutMs);
    try {
      const res = await fetch(d.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "OpenBatch-Webhooks/1",
          "webhook-id": d.id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signWebhook(target.secret, d.id, timestamp, d.body),
        },
        body: d.body,
        // A redirect is not an answer from the receiver: it counts as a failed attempt, as Standard Webhooks says.
        redirect: "manual",
        signal: controller.signal,
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel();
        return { statusCode: res.status, error: null, retryAfter: null };
      }
      const text = (await res.text()).slice(0, ERROR_BODY_CHARS);
      const headers: Record<string, string> = {};
      res.headers.forEach((value, key) => (headers[key] = value));
      return { statusCode: res.status, error: `The receiver answered ${res.status}${text ? `: ${text}` : "."}`, retryAfter: retryAfterMs(headers) };
    } catch (err) {
      if (controller.signal.aborted) return { statusCode: null, error: (controller.signal.reason as Error).message, retryAfter: null };
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return { statusCode: null, error: `Could not reach the receiver: ${cause?.code ?? cause?.message ?? (err as Error).message}`, retryAfter: null };
    } finally {
      clearTimeout(timeout);
    }
  }
}
