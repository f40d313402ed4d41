import { randomBytes } from "node:crypto";
import type { Batch, ItemOutcome } from "../../core/batch.js";
import { withModel } from "../../providers/http-upstream.js";
import type { NativeBatchApi, NativeRequestLine, VendorSubmission } from "../../providers/native/native-api.js";
import { TranslationError, translateRequest } from "../../providers/translate/translate.js";
import type { Store } from "../../store/store.js";
import type { LineOutcome, VendorJob } from "../../store/vendor-jobs.js";
import { noAnswer } from "./item-outcomes.js";

/** Our vendor custom id of an item: the batch id and its line, unique per item across every batch. */
export function vendorCustomId(batchId: string, line: number): string {
  return `${batchId}-${line}`;
}

/**
 * Cuts the batch's queued items past the last chunk into new vendor jobs within the vendor's limits, each stored
 * (with the outcomes of its untranslatable items) before it is returned. @param chunk the number of the first new chunk.
 * @returns the jobs made, in chunk order.
 */
export async function cutChunks(store: Store, batch: Batch, api: NativeBatchApi, chunk: number): Promise<VendorJob[]> {
  const made: VendorJob[] = [];
  let after = await store.vendorJobs.coveredUpTo(batch.id);
  type Draft = { first: number; last: number; requests: number; bytes: number; failures: LineOutcome[]; endpoint: string | null };
  let cur: Draft | null = null;
  const emit = async (d: Draft) => {
    if (d.requests === 0) {
      // Only untranslatable items: nothing goes to the vendor, they end at once.
      await store.vendorJobs.recordOutcomes(batch.id, d.first, d.last, d.failures, Date.now());
      return;
    }
    const now = Date.now();
    const job: VendorJob = {
      id: "vjob_" + randomBytes(12).toString("hex"),
      batch_id: batch.id,
      chunk: chunk++,
      provider: batch.provider!,
      vendor: api.vendor,
      endpoint: d.endpoint as VendorJob["endpoint"],
      first_line: d.first,
      last_line: d.last,
      requests: d.requests,
      bytes: d.bytes,
      state: "pending",
      vendor_file_id: null,
      vendor_id: null,
      vendor_status: null,
      outcome: null,
      result_ref: null,
      failure: null,
      cancel_requested: false,
      errors: 0,
      last_error: null,
      next_attempt_at: 0,
      created_at: now,
      updated_at: now,
    };
    await store.vendorJobs.insertJob(job, d.failures);
    made.push(job);
  };
  for (;;) {
    const page = await store.pageRequests(batch.id, after, 1000, ["queued"]);
    if (page.length === 0) break;
    for (const r of page) {
      const line = lineFor(batch, api, r.line, r.body);
      cur ??= { first: r.line, last: r.line, requests: 0, bytes: 0, failures: [], endpoint: null };
      if ("failure" in line) {
        cur.failures.push({ line: r.line, outcome: line.failure });
        cur.last = r.line;
        continue;
      }
      const size = line.body.length + api.lineOverhead(line);
      if (cur.requests > 0 && (cur.requests + 1 > api.limits.maxRequests || cur.bytes + size > api.limits.maxBytes)) {
        await emit(cur);
        cur = { first: r.line, last: r.line, requests: 0, bytes: 0, failures: [], endpoint: null };
      }
      cur.requests++;
      cur.bytes += size;
      cur.last = r.line;
      cur.endpoint = line.endpoint;
    }
    after = page[page.length - 1]!.line;
  }
  if (cur) await emit(cur);
  return made;
}

/** An item's line in the vendor's format, or the outcome of an item that cannot be translated to it. */
export function lineFor(batch: Batch, api: NativeBatchApi, line: number, body: string): (NativeRequestLine & { endpoint: string }) | { failure: ItemOutcome } {
  try {
    const wire = translateRequest(batch.endpoint, body, api.format);
    // Gemini carries the model in the URL; the others want it in each body (a Gemini-born body names none).
    const out = api.format === "gemini" ? withoutModel(wire.body) : withModel(wire.body, batch.model);
    return { customId: vendorCustomId(batch.id, line), body: out, endpoint: wire.endpoint };
  } catch (err) {
    if (!(err instanceof TranslationError)) throw err;
    return { failure: noAnswer("failed", "untranslatable_field", `Field '${err.param}' cannot be translated for provider ${batch.provider}: ${err.message}`) };
  }
}

/** What the vendor adapter is given to upload or create `job`: its lines read from the store page by page (never whole). */
export function submissionOf(store: Store, batch: Batch, api: NativeBatchApi, job: VendorJob): VendorSubmission {
  return {
    tag: job.id,
    model: batch.model,
    endpoint: job.endpoint,
    bytes: job.bytes,
    async *lines() {
      let after = job.first_line - 1;
      for (;;) {
        const page = await store.pageRequests(batch.id, after, 500, ["queued"]);
        for (const r of page) {
          if (r.line > job.last_line) return;
          const line = lineFor(batch, api, r.line, r.body);
          if (!("failure" in line)) yield { customId: line.customId, body: line.body };
        }
        if (page.length < 500) return;
        after = page[page.length - 1]!.line;
      }
    },
  };
}

/** A JSON body without its `model` (Gemini carries the model in the URL). */
function withoutModel(body: string): string {
  if (!/"model"\s*:/.test(body)) return body;
  try {
    const o = JSON.parse(body) as Record<string, unknown>;
    delete o.model;
    return JSON.stringify(o);
  } catch {
    return body;
  }
}
