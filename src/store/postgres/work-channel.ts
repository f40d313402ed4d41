import type { Queryable } from "./db.js";

/** The channel NOTIFY wakes dispatchers on (payload: a batch id, or "" for any). */
export const WORK_CHANNEL = "openbatch_work";

/** Announces work on {@link WORK_CHANNEL} (in `q`'s transaction, so it is heard only if that commits). @param batchId the batch, or "" for any. */
export async function notifyWork(q: Queryable, batchId: string): Promise<void> {
  await q.query(`SELECT pg_notify($1, $2)`, [WORK_CHANNEL, batchId]);
}
