import { Counter, Gauge, type Registry } from "prom-client";
import { isTerminal, type Batch } from "../../core/batch.js";
import { parseCompletionWindow } from "../../core/duration.js";
import { VendorError, type NativeBatchApi, type VendorCall } from "../../providers/native/native-api.js";
import { createNativeApi, effectiveBatchMode } from "../../providers/native/native-apis.js";
import type { ProviderRegistry } from "../../providers/registry.js";
import type { Store } from "../../store/store.js";
import { isFinalJobState, type RunMode, type VendorJob } from "../../store/vendor-jobs.js";
import type { KeyVault } from "../key-vault.js";
import type { Log } from "../log.js";
import { cutChunks, submissionOf } from "./chunks.js";
import { noAnswer } from "./item-outcomes.js";
import { recordJob } from "./record.js";

/** Re-exported so callers keep importing it from the runner. */
export { vendorCustomId } from "./chunks.js";

/** What the direct dispatcher asks before it runs a batch: whether vendor jobs hold it. */
export interface NativeGate {
  /** True while the batch's items are the native runner's (the dispatcher then leaves the batch alone). */
  holds(batch: Batch): Promise<boolean>;
}

/** Native runner settings. */
export interface NativeRunnerOptions {
  /** Longest sleep between passes, ms (default 1000); each job's own poll time comes from its provider's nativePollMs. */
  tickMs?: number;
  /** Outcomes written per transaction while recording a job's results (default 500). */
  recordGroup?: number;
}

/** Most consecutive non-retryable errors on poll or download before a job is given up (its items fail with the error). */
const MAX_FINAL_ERRORS = 10;
/** Longest backoff between vendor calls after errors, ms. */
const MAX_BACKOFF_MS = 600_000;
/**
 * How long a cancelled or expired batch waits for its vendor jobs to end (the vendor's cancel, then its partial
 * results) before it gives them up and ends without what they hold, ms.
 */
const STOP_GRACE_MS = 3_600_000;

/**
 * Runs batches on the providers' own batch APIs (DESIGN.md: "two run modes: direct and native"). A batch's mode is
 * decided the first time the dispatcher looks at it (`holds`): the create call's `x-openbatch-batch-mode`, else the
 * provider's `batchMode` (auto: native when the completion window is at least `nativeWindowMs`). A native batch's
 * queued items are cut into chunks within the vendor's limits; each chunk is a stored vendor job written before the
 * vendor call that creates it, and advanced one step per pass: upload → create → poll → download and record → done.
 * Every step's result is stored before the next, so after a kill -9 anywhere the next process resumes each job where
 * it stood: a job whose create call may have reached the vendor is first looked up by its tag (OpenAI `metadata`,
 * Gemini `displayName`) and never created twice; results are recorded only into items not finished yet, so recording
 * again after a crash writes each item once. 429/5xx/network errors back off and retry; they never end a batch.
 * When every job has ended the batch is handed back to the dispatcher, which finalizes it, ends what is left on a
 * cancel or expiry, or runs directly what an expired or cancelled vendor job left (`nativeFallback: "direct"`).
 */
export class NativeRunner implements NativeGate {
  private readonly apis = new Map<string, NativeBatchApi | null>();
  private readonly held = new Map<string, boolean>();
  private readonly keys = new Map<string, string | undefined>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private abort = new AbortController();
  private readonly tickMs: number;
  private readonly recordGroup: number;
  private readonly polls: Counter;
  private readonly vendorErrors: Counter;
  private readonly jobsCreated: Counter;
  private readonly unknownResults: Counter;

  constructor(
    private readonly store: Store,
    private readonly providers: ProviderRegistry,
    private readonly vault: KeyVault,
    private readonly log: Log,
    /** Where the runner's metrics are registered (the engine's). */
    registry: Registry,
    /** Asks the dispatcher for a pass (a batch was handed back). */
    private readonly wakeDispatcher: () => void,
    options: NativeRunnerOptions = {},
  ) {
    this.tickMs = options.tickMs ?? 1000;
    this.recordGroup = options.recordGroup ?? 500;
    const registers = [registry];
    const store_ = store;
    new Gauge({
      name: "openbatch_vendor_jobs",
      help: "Vendor jobs (chunks of batches run on a provider's own batch API) by state.",
      labelNames: ["state"],
      registers,
      async collect() {
        for (const [state, n] of Object.entries(await store_.vendorJobs.jobCounts())) this.set({ state }, n);
      },
    });
    this.polls = new Counter({ name: "openbatch_vendor_polls_total", help: "Polls of vendor jobs.", labelNames: ["provider"], registers });
    this.vendorErrors = new Counter({
      name: "openbatch_vendor_errors_total",
      help: "Failed vendor batch-API calls, by operation (upload, create, lookup, poll, download, cancel).",
      labelNames: ["provider", "op"],
      registers,
    });
    this.jobsCreated = new Counter({ name: "openbatch_vendor_jobs_created_total", help: "Vendor jobs the vendor accepted.", labelNames: ["provider"], registers });
    this.unknownResults = new Counter({
      name: "openbatch_vendor_unknown_results_total",
      help: "Vendor results naming a custom id that is not one of the job's requests (ignored).",
      labelNames: ["provider"],
      registers,
    });
  }

  start(): void {
    this.stopped = false;
    this.abort = new AbortController();
    this.wake();
  }

  /** Stops passes and aborts vendor calls in flight; every job stays stored and resumes on the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort(new Error("native runner stopping"));
    await this.running;
    await Promise.all([...this.apis.values()].map((a) => a?.close()));
    this.apis.clear();
  }

  /** Asks for a pass soon (a new native batch, a cancel). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), 0);
  }

  async holds(batch: Batch): Promise<boolean> {
    // A file batch cancelled while validating has not stored all its items yet: nothing to hand to a vendor.
    if (batch.in_progress_at === null) return false;
    // Only held batches are cached (released ones are asked again: one primary-key read), so the map stays as small as the native work.
    if (this.held.get(batch.id)) return true;
    let run = await this.store.vendorJobs.getRun(batch.id);
    if (!run?.mode) {
      const mode = this.chooseMode(batch, run?.requested ?? null);
      run = await this.store.vendorJobs.decide(batch.id, mode);
      if (run.held) this.log.info({ batch: batch.id, provider: batch.provider }, "batch runs natively on the provider's batch API");
    }
    if (run.held) {
      this.held.set(batch.id, true);
      this.wake();
    }
    return run.held;
  }

  /** The mode a batch runs in; see the class docstring. */
  private chooseMode(batch: Batch, requested: RunMode | null): RunMode {
    const config = batch.provider ? this.providers.configOf(batch.provider) : undefined;
    if (!config || !this.apiFor(batch.provider!)) {
      // Asked for native on a provider without a batch API: held, so `advance` fails its items with native_unsupported.
      return requested === "native" && config ? "native" : "direct";
    }
    if (requested) return requested;
    const mode = effectiveBatchMode(config);
    if (mode !== "auto") return mode;
    const windowMs = (() => {
      try {
        return parseCompletionWindow(batch.completion_window);
      } catch {
        return 0;
      }
    })();
    return "nativeWindowMs" in config && windowMs >= config.nativeWindowMs ? "native" : "direct";
  }

  private apiFor(provider: string): NativeBatchApi | null {
    if (!this.apis.has(provider)) {
      const config = this.providers.configOf(provider);
      this.apis.set(provider, config ? createNativeApi(provider, config) : null);
    }
    return this.apis.get(provider)!;
  }

  private pollMsOf(provider: string): number {
    const c = this.providers.configOf(provider);
    return c && "nativePollMs" in c ? c.nativePollMs : 30_000;
  }

  private tick(): void {
    this.timer = null;
    if (this.stopped) return;
    let sleep = this.tickMs;
    this.running = this.pass()
      .then((s) => {
        sleep = s;
      })
      .catch((err) => this.log.error({ err }, "native runner pass failed; retrying"))
      .finally(() => {
        this.running = null;
        if (this.stopped) return;
        if (this.again) sleep = 0;
        this.again = false;
        this.timer = setTimeout(() => this.tick(), Math.max(0, Math.min(sleep, this.tickMs)));
      });
  }

  /** One pass over every held batch. @returns ms until the next pass is useful. */
  private async pass(): Promise<number> {
    let next = Date.now() + this.tickMs;
    for (const id of await this.store.vendorJobs.heldBatches()) {
      if (this.stopped) break;
      // On a shared store every worker runs a runner: one at a time per batch, or a chunk could be submitted twice.
      const unlock = this.store.lockBatch ? await this.store.lockBatch(id) : async () => undefined;
      if (!unlock) continue;
      try {
        const batch = await this.store.getBatch(id);
        if (!batch || isTerminal(batch.status) || batch.status === "finalizing") {
          await this.release(id);
          continue;
        }
        next = Math.min(next, await this.advance(batch));
      } catch (err) {
        if (this.stopped) break;
        this.log.error({ err, batch: id }, "native batch step failed; retrying");
      } finally {
        await unlock();
      }
    }
    return next - Date.now();
  }

  private async release(batchId: string): Promise<void> {
    await this.store.vendorJobs.release(batchId);
    this.held.delete(batchId);
    this.keys.delete(batchId);
    this.wakeDispatcher();
  }

  /** Moves a native batch on: cuts new chunks, steps each due job, and hands the batch back once all have ended. @returns when a job is next due (unix ms). */
  private async advance(batch: Batch): Promise<number> {
    const api = this.apiFor(batch.provider ?? "");
    if (!api) {
      const config = this.providers.configOf(batch.provider ?? "");
      // Native was asked for (a file batch routed by model only now) on a provider without a batch API: say so per item.
      if (config) {
        const outcome = noAnswer("failed", "native_unsupported", `Provider "${batch.provider}" (${config.type}) has no batch API; x-openbatch-batch-mode: native needs an OpenAI, Anthropic or Gemini provider.`);
        await this.store.vendorJobs.settleRange(batch.id, 1, Number.MAX_SAFE_INTEGER, outcome, Date.now());
      }
      await this.release(batch.id);
      return Infinity;
    }
    const stopping = batch.status === "cancelling" || batch.expires_at <= Date.now();
    let jobs = await this.store.vendorJobs.jobsOf(batch.id);
    const stopSince = batch.status === "cancelling" ? (batch.cancelling_at ?? batch.expires_at) : batch.expires_at;
    if (stopping && Date.now() - stopSince > STOP_GRACE_MS) {
      // A vendor that never ends a cancelled job (or never answers) must not keep the batch open for ever.
      for (const j of jobs) {
        if (isFinalJobState(j.state)) continue;
        this.log.warn({ batch: batch.id, job: j.id, vendor_id: j.vendor_id }, "vendor job did not end within an hour of the cancel or expiry; given up");
        await this.store.vendorJobs.updateJob(j.id, { state: "abandoned", last_error: "given up: the vendor job did not end after the batch was cancelled or expired" });
        await this.store.vendorJobs.setProgress?.(j.id, batch.id, null);
      }
      await this.release(batch.id);
      return Infinity;
    }
    if (!stopping && batch.status === "in_progress") {
      const made = await cutChunks(this.store, batch, api, jobs.length);
      jobs = jobs.concat(made);
    }
    const now = Date.now();
    let next = Infinity;
    await Promise.all(
      jobs.map(async (job) => {
        if (isFinalJobState(job.state)) return;
        if (job.next_attempt_at > now) {
          next = Math.min(next, job.next_attempt_at);
          return;
        }
        await this.step(batch, api, job, stopping);
      }),
    );
    const after = await this.store.vendorJobs.jobsOf(batch.id);
    for (const j of after) if (!isFinalJobState(j.state)) next = Math.min(next, j.next_attempt_at);
    if (after.every((j) => isFinalJobState(j.state))) await this.settle(batch, after, stopping);
    return next;
  }

  private async callFor(batchId: string): Promise<VendorCall> {
    if (!this.keys.has(batchId)) {
      const sealed = await this.store.getProviderKey(batchId);
      this.keys.set(batchId, sealed ? this.vault.open(sealed) : undefined);
    }
    return { apiKey: this.keys.get(batchId), signal: this.abort.signal };
  }

  /** One step of a job; a failed vendor call backs off (retryable) or, past its limit, fails the job's items with the vendor's message. */
  private async step(batch: Batch, api: NativeBatchApi, job: VendorJob, stopping: boolean): Promise<void> {
    const ctx = { op: "create" };
    try {
      await this.stepOnce(batch, api, job, stopping, ctx);
    } catch (err) {
      if (this.stopped || this.abort.signal.aborted) return;
      const e = err instanceof VendorError ? err : new VendorError((err as Error).message, null, true);
      this.vendorErrors.inc({ provider: job.provider, op: ctx.op });
      const errors = job.errors + 1;
      const final = !e.retryable && (ctx.op === "create" || ctx.op === "upload" || errors >= MAX_FINAL_ERRORS);
      this.log.warn({ batch: batch.id, job: job.id, op: ctx.op, status: e.status, err: e.message, final }, "vendor call failed");
      if (final && (job.state === "pending" || job.state === "uploaded" || job.state === "submitted")) {
        await this.store.vendorJobs.updateJob(job.id, { state: "ended", outcome: "failed", failure: JSON.stringify({ message: e.message, lines: [] }), last_error: e.message });
        return;
      }
      const base = Math.min(MAX_BACKOFF_MS, this.pollMsOf(job.provider) * 2 ** Math.min(errors, 16));
      const delay = Math.max(e.retryAfterMs ?? 0, base / 2 + Math.random() * (base / 2));
      await this.store.vendorJobs.updateJob(job.id, { errors, last_error: e.message, next_attempt_at: Date.now() + delay });
    }
  }

  private async stepOnce(batch: Batch, api: NativeBatchApi, job: VendorJob, stopping: boolean, ctx: { op: string }): Promise<void> {
    const call = await this.callFor(batch.id);
    const jobs = this.store.vendorJobs;
    if (job.state === "pending" || job.state === "uploaded") {
      if (job.vendor_status === "creating" && api.taggable) {
        // A create call was under way when the last process stopped: the vendor may hold the job already.
        ctx.op = "lookup";
        const found = await api.findByTag(job.id, job.created_at, call);
        if (found) {
          this.log.info({ batch: batch.id, job: job.id, vendor_id: found }, "vendor job found by its tag after a restart; not created again");
          await jobs.updateJob(job.id, { state: "submitted", vendor_id: found, vendor_status: "submitted", errors: 0, next_attempt_at: 0 });
          this.again = true;
          return;
        }
      }
      if (stopping) {
        await jobs.updateJob(job.id, { state: "abandoned" });
        return;
      }
      const submission = submissionOf(this.store, batch, api, job);
      let fileId = job.vendor_file_id;
      if (api.upload && !fileId) {
        ctx.op = "upload";
        fileId = await api.upload(submission, call);
        // null: the adapter sends this job inline (Gemini under its inline size); nothing to remember.
        if (fileId) await jobs.updateJob(job.id, { state: "uploaded", vendor_file_id: fileId });
      }
      ctx.op = "create";
      await jobs.updateJob(job.id, { vendor_status: "creating" });
      const vendorId = await api.create(submission, fileId, call);
      await jobs.updateJob(job.id, { state: "submitted", vendor_id: vendorId, vendor_status: "submitted", errors: 0, last_error: null, next_attempt_at: Date.now() + this.pollMsOf(job.provider) });
      this.jobsCreated.inc({ provider: job.provider });
      this.log.info({ batch: batch.id, job: job.id, vendor_id: vendorId, requests: job.requests }, "vendor job created");
      return;
    }
    if (job.state === "submitted") {
      const vendorId = job.vendor_id!;
      if (stopping && !job.cancel_requested) {
        ctx.op = "cancel";
        try {
          await api.cancel(vendorId, call);
        } catch (err) {
          // A job that ended meanwhile cannot be cancelled; the poll below tells how it ended.
          if (!(err instanceof VendorError) || err.retryable) throw err;
          this.log.warn({ batch: batch.id, job: job.id, err: err.message }, "vendor refused the cancel");
        }
        await jobs.updateJob(job.id, { cancel_requested: true });
      }
      ctx.op = "poll";
      this.polls.inc({ provider: job.provider });
      const p = await api.poll(vendorId, call);
      if (!p.ended) {
        if (p.counts) await jobs.setProgress?.(job.id, batch.id, p.counts);
        await jobs.updateJob(job.id, { vendor_status: p.status, errors: 0, next_attempt_at: Date.now() + this.pollMsOf(job.provider) });
        return;
      }
      // From here the recorded items count, not the vendor's report.
      await jobs.setProgress?.(job.id, batch.id, null);
      const ended = { state: "ended" as const, vendor_status: p.status, outcome: p.ended, result_ref: JSON.stringify(p.resultRef ?? null), failure: p.failure ? JSON.stringify(p.failure) : null, errors: 0 };
      await jobs.updateJob(job.id, ended);
      job = { ...job, ...ended };
    }
    if (job.state === "ended") {
      ctx.op = "download";
      await recordJob({ store: this.store, log: this.log, recordGroup: this.recordGroup, unknownResults: this.unknownResults }, batch, api, job, call);
    }
  }

  /**
   * Every job of a batch has ended: hand it back. On a cancel or an expiry the dispatcher ends what is left; what an
   * expired or cancelled vendor job left runs directly while our window has time (`nativeFallback: "direct"`), else
   * ends as batch_expired / batch_cancelled.
   */
  private async settle(batch: Batch, jobs: VendorJob[], stopping: boolean): Promise<void> {
    if (!stopping) {
      const left = jobs.filter((j) => j.state === "abandoned" || j.outcome === "expired" || j.outcome === "cancelled");
      const config = this.providers.configOf(batch.provider ?? "");
      const fallback = config && "nativeFallback" in config ? config.nativeFallback : "direct";
      if (left.length > 0 && !(fallback === "direct" && batch.expires_at > Date.now())) {
        for (const j of left) {
          const outcome =
            j.outcome === "cancelled"
              ? noAnswer("cancelled", "batch_cancelled", "The vendor cancelled its batch before this request ran.")
              : noAnswer("expired", "batch_expired", "The vendor's batch expired before this request ran.");
          await this.store.vendorJobs.settleRange(batch.id, j.first_line, j.last_line, outcome, Date.now());
        }
      } else if (left.length > 0) {
        this.log.info({ batch: batch.id }, "vendor jobs ended early; what they left runs directly");
      }
    }
    await this.release(batch.id);
  }
}
