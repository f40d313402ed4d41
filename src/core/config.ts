import { z } from "zod";

const secret = z.string().describe('a literal, or "env:NAME" to read it from the environment');

/** Fields every remote (HTTP) provider takes. */
const remote = {
  apiKey: secret.optional(),
  headers: z.record(z.string(), secret).default({}),
  /** Upper bound of calls in flight at once. */
  maxConcurrency: z.number().int().positive().default(16),
  /** Per-call timeout in ms (headers and body). */
  timeoutMs: z.number().int().positive().default(600_000),
  /** Requests per minute this provider allows; with none, the limit is discovered from its answers. */
  rpm: z.number().positive().optional(),
  /** Tokens per minute (prompt tokens + max_tokens of each request); with none, discovered like rpm. */
  tpm: z.number().positive().optional(),
  /** Budgets of single models on this provider (model id or glob → {rpm, tpm}), on top of the provider's. */
  modelBudgets: z.record(z.string(), z.object({ rpm: z.number().positive().optional(), tpm: z.number().positive().optional() })).default({}),
};

const openAICompatible = z.object({
  type: z.literal("openai-compatible"),
  baseURL: z.string().url(),
  ...remote,
});

/** Anthropic's Messages API (`POST {baseURL}/v1/messages`, `x-api-key`); other formats are translated to it. */
const anthropic = z.object({
  type: z.literal("anthropic"),
  baseURL: z.string().url().default("https://api.anthropic.com"),
  ...remote,
});

/** Gemini's API (`POST {baseURL}/v1beta/models/{model}:generateContent|:embedContent`, `x-goog-api-key`). */
const gemini = z.object({
  type: z.literal("gemini"),
  baseURL: z.string().url().default("https://generativelanguage.googleapis.com"),
  ...remote,
});

/** In-process sentence embeddings from GloVe-derived word vectors (model `local/glove-100d`). */
const localEmbeddings = z.object({ type: z.literal("local-embeddings") });

/** An embedded GGUF model run in-process by node-llama-cpp (chat, completions and embeddings). */
const localLlm = z.object({
  type: z.literal("local-llm"),
  /** A .gguf file path (relative to the working directory), or an `hf:` / https URI downloaded into the cache dir. */
  model: z.string().min(1),
  /** CPU threads for decoding; defaults to os.availableParallelism() - 1 (at least 1), leaving a core to the event loop. */
  threads: z.number().int().positive().optional(),
  /** Sequences decoded in parallel in one context (continuous batching). */
  parallelSequences: z.number().int().positive().max(256).default(4),
  /** Tokens per sequence (prompt + output); defaults to min(2048, the model's training context). */
  contextSize: z.number().int().positive().optional(),
  /** Upper bound of calls in flight at once; defaults to 2 × parallelSequences (the extra calls wait for a free sequence). */
  maxConcurrency: z.number().int().positive().optional(),
  /** Per-call limit in ms, waiting for a free sequence included. */
  timeoutMs: z.number().int().positive().default(600_000),
});

export const providerConfigSchema = z.discriminatedUnion("type", [openAICompatible, anthropic, gemini, localEmbeddings, localLlm]);
export type ProviderConfig = z.infer<typeof providerConfigSchema>;

/** The `--config` file (JSON). Every field has a default, so `{}` is a valid config. */
export const configSchema = z
  .object({
    providers: z.record(z.string(), providerConfigSchema).default({}),
    /** Model id or glob → provider name; the first match in file order wins. */
    models: z.record(z.string(), z.string()).default({}),
    /** OpenBatch API keys; when any is set every route needs one. */
    apiKeys: z.array(secret).default([]),
    limits: z
      .object({
        /** Largest accepted upload, bytes. */
        maxFileBytes: z.number().int().positive().default(200 * 1024 * 1024),
        /** Most request lines in one batch. */
        maxRequestsPerBatch: z.number().int().positive().default(50_000),
      })
      .prefault({}),
    retry: z
      .object({
        /** Upstream attempts per item, the first included. */
        maxAttempts: z.number().int().positive().default(6),
        /** First backoff step, ms; doubles each attempt, with full jitter. */
        baseDelayMs: z.number().int().nonnegative().default(1000),
        /** Backoff ceiling, ms (a longer Retry-After is still honoured). */
        maxDelayMs: z.number().int().positive().default(60_000),
      })
      .prefault({}),
    /** USD per 1M tokens by model id or glob: `{input, output, batchInput?, batchOutput?}` (batch defaults to half). */
    prices: z
      .record(z.string(), z.object({ input: z.number().nonnegative(), output: z.number().nonnegative(), batchInput: z.number().nonnegative().optional(), batchOutput: z.number().nonnegative().optional() }))
      .default({}),
    /** How long a claimed item stays leased before another worker may take it, ms. Longer than any timeout. */
    leaseMs: z.number().int().positive().optional(),
  })
  .strict();
export type Config = z.infer<typeof configSchema>;

/**
 * Validates a parsed config object and resolves `"env:NAME"` secrets from `env`.
 * @throws Error naming the bad field, or the missing environment variable.
 */
export function parseConfig(raw: unknown, env: Record<string, string | undefined> = process.env): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`Invalid config at ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const config = result.data;
  const resolve = (value: string, where: string): string => {
    if (!value.startsWith("env:")) return value;
    const name = value.slice(4);
    const found = env[name];
    if (found === undefined) throw new Error(`Config ${where} reads environment variable ${name}, which is not set.`);
    return found;
  };
  for (const [name, p] of Object.entries(config.providers)) {
    if (p.type !== "openai-compatible" && p.type !== "anthropic" && p.type !== "gemini") continue;
    if (p.apiKey !== undefined) p.apiKey = resolve(p.apiKey, `providers.${name}.apiKey`);
    for (const h of Object.keys(p.headers)) p.headers[h] = resolve(p.headers[h]!, `providers.${name}.headers.${h}`);
  }
  config.apiKeys = config.apiKeys.map((k, i) => resolve(k, `apiKeys[${i}]`));
  for (const target of Object.values(config.models)) {
    if (!Object.hasOwn(config.providers, target)) throw new Error(`Config models maps to unknown provider "${target}".`);
  }
  return config;
}
