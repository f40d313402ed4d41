import { randomBytes } from "node:crypto";
import type { BatchStatus } from "../../core/batch.js";
import { isTerminal } from "../../core/batch.js";
import { invalidRequest } from "../../core/errors.js";
import { WEBHOOK_EVENT_OF } from "../webhook-outbox.js";
import type { Page } from "../store.js";
import type { WebhookAttempt, WebhookDelivery, WebhookDeliveryLog, WebhookDeliveryStatus, WebhookEvent, WebhookOutbox } from "../webhook-outbox.js";
import type { PgDatabase, Queryable } from "./db.js";

/**
 * The webhook outbox in PostgreSQL (same tables as the SQLite one). Shared by every server: claims take due deliveries
 * with `FOR UPDATE SKIP LOCKED`, so two senders never try one delivery at once, and a claim a dead sender left lapses at
 * its `claimUntil`; `releaseClaims` therefore releases nothing (other senders' claims are live).
 */
export class PgWebhookOutbox implements WebhookOutbox {
  constructor(private readonly db: PgDatabase) {}

  /** Queues the event of a batch ending (a terminal status reached from a non-terminal one), inside the caller's transaction. */
  async recordTransition(q: Queryable, batchId: string, dialect: string, from: BatchStatus, to: BatchStatus, now: number): Promise<void> {
    const type = WEBHOOK_EVENT_OF[to];
    if (type === undefined || isTerminal(from)) return;
    await q.query(`INSERT INTO webhook_events (id, batch_id, dialect, type, created_at) VALUES ($1, $2, $3, $4, $5)`, [
      "evt_" + randomBytes(16).toString("hex"),
      batchId,
      dialect,
      type,
      now,
    ]);
  }

  async pendingEvents(limit: number): Promise<WebhookEvent[]> {
    return this.db.rows<WebhookEvent>(`SELECT id, batch_id, dialect, type, created_at FROM webhook_events ORDER BY seq LIMIT $1`, [limit]);
  }

  async fanOut(event: WebhookEvent, targets: { id: string; url: string; body: string }[], now: number): Promise<void> {
    await this.db.tx(async (c) => {
      for (const t of targets) {
        await c.query(
          `INSERT INTO webhook_deliveries (id, event_id, event_type, batch_id, url, body, next_attempt_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING`,
          [t.id, event.id, event.type, event.batch_id, t.url, t.body, now],
        );
      }
      await c.query(`DELETE FROM webhook_events WHERE id = $1`, [event.id]);
    });
  }

  async claimDue(now: number, limit: number, claimUntil: number): Promise<WebhookDelivery[]> {
    const rows = await this.db.rows<WebhookDelivery>(
      `WITH due AS (
         SELECT seq FROM webhook_deliveries
          WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1
          ORDER BY next_attempt_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE webhook_deliveries d SET status = 'sending', next_attempt_at = $3 FROM due WHERE d.seq = due.seq
       RETURNING d.id, d.event_id, d.event_type, d.batch_id, d.url, d.body, d.status, d.attempts, d.next_attempt_at, d.created_at, d.seq`,
      [now, limit, claimUntil],
    );
    return rows
      .sort((a, b) => (a as unknown as { seq: number }).seq - (b as unknown as { seq: number }).seq)
      .map((d) => {
        const { seq: _seq, ...rest } = d as WebhookDelivery & { seq: number };
        return { ...rest, status: "pending" as const };
      });
  }

  async releaseClaims(_now: number): Promise<number> {
    // Many processes share this outbox: a claim may belong to a live sender, so none is taken back early.
    return 0;
  }

  async recordAttempt(deliveryId: string, a: Omit<WebhookAttempt, "attempt">, status: WebhookDeliveryStatus): Promise<void> {
    await this.db.tx(async (c) => {
      const next = status === "pending" ? a.next_attempt_at : null;
      const row = (await c.query<{ attempts: number }>(`UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, next_attempt_at = $2 WHERE id = $3 RETURNING attempts`, [status, next, deliveryId])).rows[0];
      if (!row) return;
      await c.query(`INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, error, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6)`, [
        deliveryId,
        row.attempts,
        a.attempted_at,
        a.status_code,
        a.error,
        next,
      ]);
    });
  }

  /** @throws OpenBatchError 400 (param `after`) when `after` is no delivery of this batch. */
  async listDeliveries(batchId: string, q: { after?: string; limit: number }): Promise<Page<WebhookDeliveryLog>> {
    if (q.after !== undefined && (await this.db.rows(`SELECT 1 FROM webhook_deliveries WHERE id = $1 AND batch_id = $2`, [q.after, batchId])).length === 0) {
      throw invalidRequest(`No webhook delivery ${q.after} in batch ${batchId}.`, "after");
    }
    const rows = await this.db.rows<WebhookDelivery>(
      `SELECT id, event_id, event_type, batch_id, url, body, CASE status WHEN 'sending' THEN 'pending' ELSE status END AS status,
              attempts, next_attempt_at, created_at
         FROM webhook_deliveries
        WHERE batch_id = $1 AND seq > coalesce((SELECT seq FROM webhook_deliveries WHERE id = $2 AND batch_id = $1), 0)
        ORDER BY seq LIMIT $3`,
      [batchId, q.after ?? null, q.limit + 1],
    );
    const data: WebhookDeliveryLog[] = [];
    for (const d of rows.slice(0, q.limit)) {
      const attempt_log = await this.db.rows<WebhookAttempt>(
        `SELECT attempt, attempted_at, status_code, error, next_attempt_at FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt`,
        [d.id],
      );
      data.push({ ...d, attempt_log });
    }
    return { data, has_more: rows.length > q.limit };
  }
}
