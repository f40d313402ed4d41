import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import type { BatchView } from "../core/batch.js";
import { Engine } from "../engine/engine.js";
import { loadConfig } from "./config-file.js";
import { BatchProgress } from "./progress.js";

/** Options of `openbatch run`. */
export interface RunOptions {
  output: string;
  errors: string;
  dataDir: string;
  config?: string;
  completionWindow: string;
  /** Report progress on stderr (a bar on a terminal, a line per 10 % otherwise). */
  progress: boolean;
}

/**
 * `openbatch run input.jsonl`: the whole batch in-process, like `vllm run-batch`. The batch is keyed by the sha256 of
 * the input, so running the same command again after an interruption resumes it instead of starting over.
 * @returns the process exit code: 0 when the batch ran (even with failed items), 1 when the file was rejected or
 *   its results could not be written.
 */
export async function run(input: string, options: RunOptions): Promise<number> {
  const config = await loadConfig(options.config);
  const engine = await Engine.open({ dataDir: options.dataDir, config, pollMs: 100 });
  await engine.start();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const batchId = await findOrCreate(engine, input, options);
    const batch = await follow(engine, batchId, options.progress, () => interrupted);
    if (!batch) {
      process.stderr.write(`Interrupted. Run the same command again to resume batch ${batchId}.\n`);
      return 130;
    }
    if (batch.status === "failed") {
      const errors = batch.errors ?? [];
      // A batch fails either on its input (line-numbered validation errors) or after running (its results could not be written).
      const rejected = !errors.some((e) => e.code === "finalization_failed");
      process.stderr.write(rejected ? `The input was rejected:\n` : `Batch ${batch.id} failed after running:\n`);
      for (const e of errors) process.stderr.write(rejected ? `  line ${e.line ?? "-"}: [${e.code}] ${e.message}\n` : `  [${e.code}] ${e.message}\n`);
      return 1;
    }
    await copyFile(engine, batch.output_file_id, options.output);
    await copyFile(engine, batch.error_file_id, options.errors);
    const c = batch.request_counts;
    process.stderr.write(
      `Batch ${batch.id} ${batch.status}: ${c.completed} succeeded, ${c.total - c.completed} failed, of ${c.total}. ` +
        `Output: ${options.output}  Errors: ${options.errors}\n`,
    );
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await engine.close();
  }
}

async function findOrCreate(engine: Engine, input: string, options: RunOptions): Promise<string> {
  const sha = await sha256(input);
  const runsDir = join(options.dataDir, "runs");
  await mkdir(runsDir, { recursive: true });
  const marker = join(runsDir, `${sha}.json`);
  if (existsSync(marker)) {
    const { batch_id } = JSON.parse(await readFile(marker, "utf8")) as { batch_id: string };
    const batch = await engine.getBatch(null, batch_id).catch(() => null);
    if (batch && batch.status !== "failed") {
      process.stderr.write(`Resuming batch ${batch.id} (${batch.status}) for ${input}.\n`);
      return batch.id;
    }
  }
  const endpoint = await firstUrl(input);
  const staged = await engine.files.stageUpload(createReadStream(input));
  const file = await engine.files.commitUpload(null, staged, { filename: basename(input), purpose: "batch" });
  const batch = await engine.createBatch(null, {
    input_file_id: file.id,
    endpoint,
    completion_window: options.completionWindow,
    metadata: { openbatch_run_input: basename(input).slice(0, 500) },
    dialect: "openai",
  });
  await writeFile(marker, JSON.stringify({ batch_id: batch.id, input }));
  return batch.id;
}

/** Polls the batch until it ends, drawing a progress bar. @returns the ended batch, or null when interrupted. */
async function follow(engine: Engine, id: string, showProgress: boolean, interrupted: () => boolean): Promise<BatchView | null> {
  const progress = showProgress ? new BatchProgress() : null;
  try {
    for (;;) {
      const batch = await engine.getBatch(null, id);
      const c = batch.request_counts;
      progress?.update({ status: batch.status, total: c.total, done: c.total - c.pending, failed: c.total - c.pending - c.completed });
      if (Engine.isDone(batch)) return batch;
      if (interrupted()) return null;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    progress?.stop();
  }
}

async function copyFile(engine: Engine, fileId: string | null, to: string): Promise<void> {
  const source = fileId ? (await engine.files.content(null, fileId)).stream : Readable.from([]);
  await pipeline(source, createWriteStream(to));
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/** The `url` of the first request line: the batch endpoint. */
async function firstUrl(path: string): Promise<string> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      try {
        const url = (JSON.parse(line) as { url?: unknown }).url;
        if (typeof url === "string") return url;
      } catch {
        // the engine's validation reports the bad line with its number
      }
      return "/v1/chat/completions";
    }
  } finally {
    lines.close();
  }
  return "/v1/chat/completions";
}
