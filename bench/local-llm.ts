/**
 * Local LLM: completion tokens/s of the same 64 completions (real jeopardy questions as prompts, max_tokens 64,
 * temperature 0, fixed seed) on the real stories260K GGUF, with 1, 4 and 8 parallel sequences, measured two ways in
 * the same run:
 *  - direct: node-llama-cpp as a user would call it without OpenBatch (one context with P sequences, P workers each
 *    generating on its own sequence with LlamaCompletion), same threads and context size as the provider;
 *  - engine: an in-process Engine with a `local-llm` provider, upload → createBatch → completed; tokens are the
 *    batch's usage.output_tokens, timed from createBatch to completed, the model load excluded (loaded and warmed by a
 *    1-item batch first).
 * Both sides are loaded and warmed, then timed alternately ROUNDS times; each row is the median round.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { getLlama, LlamaCompletion, LlamaLogLevel } from "node-llama-cpp";
import { parseConfig } from "../src/core/config.js";
import { Engine } from "../src/engine/engine.js";
import { DEFAULT_CONTEXT_SIZE, LocalLlmProvider } from "../src/providers/local/local-llm.js";
import { datasetsDir, type BenchRow } from "./report.js";

const REQUESTS = 64;
const MAX_TOKENS = 64;
const SEED = 42;
const PARALLEL = [1, 4, 8];
const ROUNDS = 5;
/** How often the bench reads the batch while it runs (each read is SQLite work on the event loop the decoder also needs). */
const POLL_MS = 20;

interface Measured {
  tokens: number;
  seconds: number;
}

/** ../shared/models beside the checkout, or OPENBATCH_MODELS. */
function modelsDir(): string {
  return process.env.OPENBATCH_MODELS ?? resolve(import.meta.dirname, "../../shared/models");
}

export async function benchLocalLlm(): Promise<BenchRow[]> {
  const model = join(modelsDir(), "stories260K.gguf");
  const prompts = (JSON.parse(readFileSync(join(datasetsDir(), "jeopardy/jeopardy_1k.json"), "utf8")) as { Question: string }[])
    .slice(0, REQUESTS)
    .map((q) => q.Question);
  const rows: BenchRow[] = [];
  for (const p of PARALLEL) {
    const engine = await EngineSide.open(model, p);
    let direct: DirectSide | null = null;
    try {
      direct = await DirectSide.open(model, p, engine.threads);
      const d: Measured[] = [];
      const e: Measured[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        d.push(await direct.run(prompts));
        e.push(await engine.run(prompts));
      }
      const dm = median(d);
      const em = median(e);
      const directRate = dm.tokens / dm.seconds;
      const engineRate = em.tokens / em.seconds;
      const what = `${p} seq, ${engine.threads} thr, ${prompts.length}×${MAX_TOKENS} max tok`;
      rows.push(
        { bench: "local-llm", case: `direct node-llama-cpp, ${what} (${dm.tokens} tok)`, value: directRate, unit: "tok/s" },
        { bench: "local-llm", case: `through a batch, ${what} (${em.tokens} tok)`, value: engineRate, unit: "tok/s", ratio: engineRate / directRate, ratioOf: "engine ÷ direct" },
      );
    } finally {
      // The native bindings are shared: dispose the direct model first, the engine (its Llama) next, the direct Llama last.
      await direct?.disposeModel();
      await engine.close();
      await direct?.disposeLlama();
    }
  }
  return rows;
}

/** The round with the median rate. */
function median(runs: Measured[]): Measured {
  return [...runs].sort((a, b) => a.tokens / a.seconds - b.tokens / b.seconds)[Math.floor(runs.length / 2)]!;
}

/** The workload through an in-process Engine whose `local-llm` provider has P parallel sequences. */
class EngineSide {
  private constructor(
    private readonly engine: Engine,
    private readonly dataDir: string,
    /** The provider's decoding threads (its default: available cores - 1). */
    readonly threads: number,
  ) {}

  static async open(model: string, p: number): Promise<EngineSide> {
    const dataDir = await mkdtemp(join(tmpdir(), "openbatch-bench-llm-"));
    const config = parseConfig({ providers: { llm: { type: "local-llm", model, parallelSequences: p } }, models: { "*": "llm" } });
    const engine = await Engine.open({ dataDir, config, pollMs: 100 });
    const side = new EngineSide(engine, dataDir, 0);
    try {
      await engine.start();
      const provider = engine.providers.get("llm");
      if (!(provider instanceof LocalLlmProvider)) throw new Error("bench: provider llm is not a LocalLlmProvider");
      await provider.load();
      const warmed = new EngineSide(engine, dataDir, provider.threads);
      await warmed.run([`Warm up: ${p} sequences`]); // first decode, SQLite, dispatcher path
      return warmed;
    } catch (err) {
      await side.close();
      throw err;
    }
  }

  /** Uploads the prompts as a /v1/completions batch file, then times createBatch → completed. */
  async run(prompts: string[]): Promise<Measured> {
    const lines = prompts.map((prompt, i) =>
      JSON.stringify({ custom_id: `c${i}`, method: "POST", url: "/v1/completions", body: { model: "stories260K", prompt, max_tokens: MAX_TOKENS, temperature: 0, seed: SEED } }),
    );
    const staged = await this.engine.files.stageUpload(Readable.from([lines.join("\n")]));
    const file = await this.engine.files.commitUpload(null, staged, { filename: "bench.jsonl", purpose: "batch" });
    const t = performance.now();
    const created = await this.engine.createBatch(null, { input_file_id: file.id, endpoint: "/v1/completions", completion_window: "24h", dialect: "openai" });
    let batch = created;
    while (!Engine.isDone(batch)) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      batch = await this.engine.getBatch(null, created.id);
    }
    const seconds = (performance.now() - t) / 1000;
    if (batch.request_counts.completed !== prompts.length) throw new Error(`bench batch ended ${batch.status} with ${JSON.stringify(batch.request_counts)}`);
    return { tokens: batch.usage.output_tokens, seconds };
  }

  async close(): Promise<void> {
    await this.engine.close();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

type Llama = Awaited<ReturnType<typeof getLlama>>;
type LlamaModel = Awaited<ReturnType<Llama["loadModel"]>>;
type LlamaContext = Awaited<ReturnType<LlamaModel["createContext"]>>;

/** The workload on node-llama-cpp directly: one context with P sequences, P workers pulling prompts from one queue. */
class DirectSide {
  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel | null,
    private readonly context: LlamaContext | null,
    private readonly completions: LlamaCompletion[],
  ) {}

  static async open(modelPath: string, p: number, threads: number): Promise<DirectSide> {
    const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error, progressLogs: false });
    let model: LlamaModel | null = null;
    try {
      model = await llama.loadModel({ modelPath });
      // The provider's context size when the config names none: min(2048, the model's training context).
      const context = await model.createContext({ contextSize: Math.min(DEFAULT_CONTEXT_SIZE, model.trainContextSize), sequences: p, threads });
      const completions = Array.from({ length: p }, () => new LlamaCompletion({ contextSequence: context.getSequence() }));
      const side = new DirectSide(llama, model, context, completions);
      await side.generate(completions[0]!, `Warm up: ${p} sequences`); // like the engine's 1-item batch
      return side;
    } catch (err) {
      await model?.dispose();
      await llama.dispose();
      throw err;
    }
  }

  private async generate(completion: LlamaCompletion, prompt: string): Promise<number> {
    let tokens = 0;
    await completion.generateCompletion(prompt, { maxTokens: MAX_TOKENS, temperature: 0, seed: SEED, onToken: (t) => (tokens += t.length) });
    return tokens;
  }

  async run(prompts: string[]): Promise<Measured> {
    let next = 0;
    let tokens = 0;
    const t = performance.now();
    await Promise.all(
      this.completions.map(async (completion) => {
        while (next < prompts.length) {
          const n = await this.generate(completion, prompts[next++]!); // not `tokens += await …`: that reads tokens before the await
          tokens += n;
        }
      }),
    );
    return { tokens, seconds: (performance.now() - t) / 1000 };
  }

  async disposeModel(): Promise<void> {
    for (const c of this.completions) c.dispose();
    await this.context?.dispose();
    await this.model?.dispose();
  }

  async disposeLlama(): Promise<void> {
    await this.llama.dispose();
  }
}
