import { BatchProgress } from "./progress.js";

/** Options of `openbatch watch`. */
export interface WatchOptions {
  /** Server root, e.g. http://127.0.0.1:8080. */
  url: string;
  apiKey?: string;
  intervalMs: number;
}

const TERMINAL = ["completed", "failed", "expired", "cancelled"];

/**
 * `openbatch watch <batch_id>`: follows a batch on a running server (OpenAI `GET /v1/batches/{id}`) with a progress
 * bar until it ends. @returns the exit code: 0 when it completed, 1 otherwise (failed, expired, cancelled, or an error).
 */
export async function watch(batchId: string, options: WatchOptions): Promise<number> {
  const progress = new BatchProgress();
  const headers: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  try {
    for (;;) {
      const res = await fetch(`${options.url.replace(/\/+$/, "")}/v1/batches/${encodeURIComponent(batchId)}`, { headers });
      const body = (await res.json()) as { status: string; request_counts: { total: number; completed: number; failed: number }; error?: { message: string } };
      if (!res.ok) {
        progress.stop();
        process.stderr.write(`openbatch watch: ${res.status} ${body.error?.message ?? ""}\n`);
        return 1;
      }
      const c = body.request_counts;
      progress.update({ status: body.status, total: c.total, done: c.completed + c.failed, failed: c.failed });
      if (TERMINAL.includes(body.status)) {
        progress.stop();
        process.stderr.write(`Batch ${batchId} ${body.status}: ${c.completed} succeeded, ${c.failed} failed, of ${c.total}.\n`);
        return body.status === "completed" ? 0 : 1;
      }
      await new Promise((r) => setTimeout(r, options.intervalMs));
    }
  } finally {
    progress.stop();
  }
}
