import { randomBytes } from "node:crypto";
import type { BatchStatus } from "../../core/batch.js";
import { isTerminal } from "../../core/batch.js";
import { invalidRequest } from "../../core/errors.js";
import { WEBHOOK_EVENT_OF } from "../webhook-outbox.js";
import type { Page } from "../store.js";
import type {
  WebhookAttempt,
  WebhookDelivery,
  WebhookDeliveryLog,
  WebhookDeliveryStatus,
  WebhookEvent,
  WebhookOutbox,
} from "../webhook-outbox.js";
import type { SqliteConnection } from "./connection.js";

/** The event a batch sends on reaching a terminal status. */
/**
 * The webhook outbox on the store's SQLite connection (tables `webhook_events`, `webhook_deliveries`,
 * `webhook_attempts` in schema.ts). `recordTransition` is called by SqliteStore inside the transaction that changes
 * a batch's status, which is what makes the outbox exact: no event without its batch ending, no end without its event.
 */
export class SqliteWebhookOutbox implements WebhookOutbox {
  constructor(private readonly connection: SqliteConnection) {}

  private sql(text: string) {
    return this.connection.sql(text);
  }

  /**
   * Queues the event of a batch moving from `from` to `to` when that move ends it (a terminal status reached from a
   * non-terminal one); any other move adds nothing. Synchronous: it must run inside the caller's transaction.
   */
  recordTransition(batchId: string, dialect: string, from: BatchStatus, to: BatchStatus, now: number): void {
    const type = WEBHOOK_EVENT_OF[to];
    if (type === undefined || isTerminal(from)) return;
    this.sql(`INSERT INTO webhook_events (id, batch_id, dialect, type, created_at) VALUES (?, ?, ?, ?, ?)`).run(
      "evt_" + randomBytes(16).toString("hex"),
      batchId,
      dialect,
      type,
      now,
    );
  }

  async pendingEvents(limit: number): Promise<WebhookEvent[]> {
    return this.sql(`SELECT id, batch_id, dialect, type, created_at FROM webhook_events ORDER BY seq LIMIT ?`).all(limit) as WebhookEvent[];
  }

  async fanOut(event: WebhookEvent, targets: { id: string; url: string; body: string }[], now: number): Promise<void> {
    const insert = this.sql(
      `INSERT OR IGNORE INTO webhook_deliveries (id, event_id, event_type, batch_id, url, body, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.connection.db.transaction(() => {
      for (const t of targets) insert.run(t.id, event.id, event.type, event.batch_id, t.url, t.body, now, now);
      this.sql(`DELETE FROM webhook_events WHERE id = ?`).run(event.id);
    })();
  }

  // A claimed delivery is stored as status 'sending' (shown as pending): a lapsed claim is due again like a pending
  // delivery, and releaseClaims can tell claims from scheduled retries.
  async claimDue(now: number, limit: number, claimUntil: number): Promise<WebhookDelivery[]> {
    const rows = this
      .sql(
        `UPDATE webhook_deliveries SET status = 'sending', next_attempt_at = ?
          WHERE seq IN (SELECT seq FROM webhook_deliveries
                         WHERE status IN ('pending', 'sending') AND next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT ?)
        RETURNING id, event_id, event_type, batch_id, url, body, status, attempts, next_attempt_at, created_at`,
      )
      .all(claimUntil, now, limit) as WebhookDelivery[];
    return rows.map((d) => ({ ...d, status: "pending" }));
  }

  async releaseClaims(now: number): Promise<number> {
    return this.sql(`UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ? WHERE status = 'sending'`).run(now).changes;
  }

  async recordAttempt(deliveryId: string, a: Omit<WebhookAttempt, "attempt">, status: WebhookDeliveryStatus): Promise<void> {
    this.connection.db.transaction(() => {
      const row = this
        .sql(`UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, next_attempt_at = ? WHERE id = ? RETURNING attempts`)
        .get(status, status === "pending" ? a.next_attempt_at : null, deliveryId) as { attempts: number } | undefined;
      if (!row) return;
      this.sql(
        `INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, error, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(deliveryId, row.attempts, a.attempted_at, a.status_code, a.error, status === "pending" ? a.next_attempt_at : null);
    })();
  }

  /** @throws OpenBatchError 400 (param `after`) when `after` is no delivery of this batch. */
  async listDeliveries(batchId: string, q: { after?: string; limit: number }): Promise<Page<WebhookDeliveryLog>> {
    if (q.after !== undefined && this.sql(`SELECT 1 FROM webhook_deliveries WHERE id = ? AND batch_id = ?`).get(q.after, batchId) === undefined) {
      throw invalidRequest(`No webhook delivery ${q.after} in batch ${batchId}.`, "after");
    }
    const rows = this
      .sql(
        `SELECT id, event_id, event_type, batch_id, url, body, CASE status WHEN 'sending' THEN 'pending' ELSE status END AS status,
                attempts, next_attempt_at, created_at
           FROM webhook_deliveries
          WHERE batch_id = ? AND seq > coalesce((SELECT seq FROM webhook_deliveries WHERE id = ? AND batch_id = ?), 0)
          ORDER BY seq LIMIT ?`,
      )
      .all(batchId, q.after ?? null, batchId, q.limit + 1) as WebhookDelivery[];
    const attempts = this.sql(
      `SELECT attempt, attempted_at, status_code, error, next_attempt_at FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempt`,
    );
    const data = rows.slice(0, q.limit).map((d) => ({ ...d, attempt_log: attempts.all(d.id) as WebhookAttempt[] }));
    return { data, has_more: rows.length > q.limit };
  }
}
