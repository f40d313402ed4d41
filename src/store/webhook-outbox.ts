import type { WebhookEventType } from "../core/config.js";
import type { Page } from "./store.js";
import type { BatchStatus } from "../core/batch.js";

/** The webhook event a batch reaching each terminal status queues (`recordTransition` of both outboxes). */
export const WEBHOOK_EVENT_OF: Partial<Record<BatchStatus, WebhookEventType>> = {
  completed: "batch.completed",
  failed: "batch.failed",
  expired: "batch.expired",
  cancelled: "batch.cancelled",
};

export type { WebhookEventType };

/**
 * An event in the outbox: written by the store in the same transaction as the terminal status change of its batch,
 * so it exists exactly when the batch ended. Times are unix ms.
 */
export interface WebhookEvent {
  /** `evt_…`: the payload's `id`, the same at every webhook URL. */
  id: string;
  batch_id: string;
  /** The API the batch was created through (it says how the batch id is rendered in the payload). */
  dialect: string;
  type: WebhookEventType;
  /** When the batch ended. */
  created_at: number;
}

/** Where a delivery stands: still being tried, answered 2xx, or given up (out of time, or its webhook was removed). */
export type WebhookDeliveryStatus = "pending" | "delivered" | "failed";

/** One event on its way to one webhook URL. Times are unix ms. */
export interface WebhookDelivery {
  /** `wh_…`: the `webhook-id` header of every attempt of this delivery. */
  id: string;
  event_id: string;
  event_type: WebhookEventType;
  batch_id: string;
  url: string;
  /** The exact JSON text sent (and signed) on every attempt. */
  body: string;
  status: WebhookDeliveryStatus;
  /** Attempts made so far. */
  attempts: number;
  /** When the next attempt is due (while claimed: when the claim lapses); null once delivered or given up. */
  next_attempt_at: number | null;
  created_at: number;
}

/** One attempt of a delivery, as the delivery log shows it. Times are unix ms. */
export interface WebhookAttempt {
  /** 1-based. */
  attempt: number;
  attempted_at: number;
  /** The receiver's HTTP status; null when none came back (network error, timeout). */
  status_code: number | null;
  /** Why it did not count as delivered; null for a 2xx. */
  error: string | null;
  /** When the next attempt is due; null when this was the last one. */
  next_attempt_at: number | null;
}

/** A delivery with its attempts, oldest first. */
export interface WebhookDeliveryLog extends WebhookDelivery {
  attempt_log: WebhookAttempt[];
}

/**
 * The webhook outbox. Events are added by the Store itself (in `updateBatch`, inside the transaction that ends a
 * batch); the engine's WebhookSender fans each event out into deliveries, one per matching webhook, and tries them.
 * Times are unix ms.
 */
export interface WebhookOutbox {
  /** Events not yet fanned out, oldest first. */
  pendingEvents(limit: number): Promise<WebhookEvent[]>;
  /**
   * In one transaction: adds a pending delivery (due at `now`) for each target and removes the event from the
   * queue. Repeating it for the same event and URL adds nothing.
   */
  fanOut(event: WebhookEvent, targets: { id: string; url: string; body: string }[], now: number): Promise<void>;
  /**
   * Claims up to `limit` pending deliveries due at `now` (soonest first) by moving their next attempt to `claimUntil`:
   * a claim is a pending delivery that no other pass takes until then, or until `releaseClaims` (at-least-once).
   */
  claimDue(now: number, limit: number, claimUntil: number): Promise<WebhookDelivery[]>;
  /**
   * Makes every claimed delivery due at `now`. For a store one process owns (SQLite), called when that process starts:
   * a claim left by a crash is not waited out. @returns how many were released.
   */
  releaseClaims(now: number): Promise<number>;
  /**
   * Logs an attempt of a claimed delivery and sets its status: `pending` (due again at `attempt.next_attempt_at`),
   * `delivered` or `failed`. The attempt number is assigned here (attempts so far + 1).
   */
  recordAttempt(deliveryId: string, attempt: Omit<WebhookAttempt, "attempt">, status: WebhookDeliveryStatus): Promise<void>;
  /** Deliveries of a batch in creation order, each with its attempts; `after` is a delivery id cursor. */
  listDeliveries(batchId: string, q: { after?: string; limit: number }): Promise<Page<WebhookDeliveryLog>>;
}
