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
  modelBudgets: z.record(z.string(), z.strictObject({ rpm: z.number().positive().optional(), tpm: z.number().positive().optional() })).default({}),
  embeddingsCoalesce: embeddingsCoalesce(),
  ...nativeBatchFields(),
};

/**
 * Most one-text embeddings requests of a batch sent upstream as one call (engine/coalesce.ts): 64 by default, 1 turns
 * coalescing off. Each item's answer is still its own (vector, `index` 0, usage). OpenAI takes up to 2048 inputs a call.
 */
function embeddingsCoalesce() {
  return z.number().int().positive().max(2048).default(64);
}

/**
 * How a provider's batches run (engine/native): `direct` (we send each request), `native` (vendor jobs on the
 * provider's own batch API at its batch price), `auto` (native when the batch's completion window is at least
 * `nativeWindowMs`). Absent `batchMode`: auto for the vendors' own API origins (OpenAI, Anthropic, Gemini), direct for
 * any other baseURL (a self-hosted server has no batch API); see effectiveBatchMode in providers/native.
 */
function nativeBatchFields() {
  return {
    batchMode: z.enum(["direct", "native", "auto"]).optional(),
    /** The vendor's batch window, ms: `auto` runs natively only batches whose completion window is at least this (24 h). */
    nativeWindowMs: z.number().int().positive().default(86_400_000),
    /** Most requests in one vendor job (absent: the vendor's limit: OpenAI 50,000, Anthropic 100,000, Gemini 100,000). */
    nativeMaxRequests: z.number().int().positive().optional(),
    /** Most request bytes in one vendor job (absent: the vendor's limit: OpenAI 200 MB, Anthropic 256 MB, Gemini 2 GB file). */
    nativeMaxBytes: z.number().int().positive().optional(),
    /** Time between polls of a vendor job, ms (doubled on each error, up to 10 minutes). */
    nativePollMs: z.number().int().positive().default(30_000),
    /** What a vendor job that expired or was cancelled by the vendor leaves: run directly while time is left, or end. */
    nativeFallback: z.enum(["direct", "none"]).default("direct"),
  };
}

const openAICompatible = z.strictObject({
  type: z.literal("openai-compatible"),
  baseURL: z.string().url(),
  ...remote,
});

/** Anthropic's Messages API (`POST {baseURL}/v1/messages`, `x-api-key`); other formats are translated to it. */
const anthropic = z.strictObject({
  type: z.literal("anthropic"),
  baseURL: z.string().url().default("https://api.anthropic.com"),
  ...remote,
});

/** Gemini's API (`POST {baseURL}/v1beta/models/{model}:generateContent|:embedContent`, `x-goog-api-key`). */
const gemini = z.strictObject({
  type: z.literal("gemini"),
  baseURL: z.string().url().default("https://generativelanguage.googleapis.com"),
  ...remote,
  /** Native mode: largest vendor job sent inline, bytes (Gemini's inline limit, 20 MB); larger jobs go as an uploaded JSONL file. */
  nativeInlineMaxBytes: z.number().int().positive().default(20 * 1024 * 1024),
});

/** In-process sentence embeddings from GloVe-derived word vectors (model `local/glove-100d`). */
const localEmbeddings = z.strictObject({ type: z.literal("local-embeddings"), embeddingsCoalesce: embeddingsCoalesce() });

/** An embedded GGUF model run in-process by node-llama-cpp (chat, completions and embeddings). */
const localLlm = z.strictObject({
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

/** Weaviate vectorizer modules whose models `collections.vectorizerModels` maps (collections/vector-config.ts MODULES). */
export const VECTORIZER_MODULE_NAMES = ["text2vec-ollama", "text2vec-openai", "text2vec-transformers", "text2vec-huggingface"] as const;

/** What a collection grant may allow (see collections/access.ts): read its data, write its objects, manage its schema. */
export const COLLECTION_ACTIONS = ["read", "write", "manage"] as const;

/** A grant of actions on collections (names or `*` globs) to one API key, as Weaviate's RBAC grants roles per collection. */
const collectionGrant = z.strictObject({
  /** The API key (a literal, or "env:NAME"); it must be one of apiKeys / adminKeys. */
  key: secret,
  collections: z.array(z.string().regex(/^[A-Za-z*][_0-9A-Za-z*]*$/, "must be a collection name or a glob with *")).min(1),
  actions: z.array(z.enum(COLLECTION_ACTIONS, { error: (iss) => `unknown action ${JSON.stringify(iss.input)}: use ${COLLECTION_ACTIONS.join(", ")}` })).min(1),
});

/** Events a webhook can subscribe to: a batch (of any dialect) reaching that terminal status. */
export const WEBHOOK_EVENT_TYPES = ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** A URL that batch events are POSTed to, signed per Standard Webhooks as OpenAI signs its own. */
const webhook = z.strictObject({
  url: z.string().url().refine((u) => /^https?:\/\//i.test(u), "must be an http:// or https:// URL"),
  /** `whsec_<base64 key>` (as OpenAI's dashboard shows it), or "env:NAME". */
  secret,
  /** Events to send; all four when absent. */
  events: z
    .array(z.enum(WEBHOOK_EVENT_TYPES, { error: (iss) => `unknown event ${JSON.stringify(iss.input)}: use ${WEBHOOK_EVENT_TYPES.join(", ")}` }))
    .min(1)
    .default([...WEBHOOK_EVENT_TYPES]),
});

export const providerConfigSchema = z.discriminatedUnion("type", [openAICompatible, anthropic, gemini, localEmbeddings, localLlm]);
export type ProviderConfig = z.infer<typeof providerConfigSchema>;

/** The `--config` file (JSON). Every field has a default, so `{}` is a valid config. */
export const configSchema = z
  .strictObject({
    providers: z.record(z.string(), providerConfigSchema).default({}),
    /** Model id or glob → provider name; the first match in file order wins. */
    models: z.record(z.string(), z.string()).default({}),
    /** OpenBatch API keys; when any is set every route needs one. */
    apiKeys: z.array(secret).default([]),
    /** Admin keys: accepted like apiKeys, and the only ones `/metrics` answers (with auth on); they reach every collection. */
    adminKeys: z.array(secret).default([]),
    /** Who else may reach a collection than the key that created it. */
    collections: z
      .strictObject({
        grants: z.array(collectionGrant).default([]),
        /**
         * Weaviate vectorizer module → its model → the OpenBatch model that embeds for it, e.g.
         * `{"text2vec-ollama": {"nomic-embed-text": "local/glove-100d"}}`: code written for Weaviate runs unchanged with no
         * Ollama. `"*"` maps every model of a module. Unmapped models go to a provider serving them, else to the module's
         * own endpoint (Ollama's apiEndpoint, OpenAI's baseURL).
         */
        vectorizerModels: z
          .strictObject(Object.fromEntries(VECTORIZER_MODULE_NAMES.map((m) => [m, z.record(z.string().min(1), z.string().min(1)).optional()])) as Record<(typeof VECTORIZER_MODULE_NAMES)[number], z.ZodOptional<z.ZodRecord<z.ZodString, z.ZodString>>>)
          .default({}),
      })
      .prefault({}),
    limits: z
      .strictObject({
        /** Largest accepted upload, bytes. */
        maxFileBytes: z.number().int().positive().default(200 * 1024 * 1024),
        /** Most request lines in one batch. */
        maxRequestsPerBatch: z.number().int().positive().default(50_000),
        /** Unfinished Gemini resumable upload sessions one API key may hold; one more start answers 429. */
        uploadSessionsPerKey: z.number().int().positive().default(100),
        /** Unfinished upload sessions on the whole server. */
        uploadSessionsTotal: z.number().int().positive().default(10_000),
        /** An upload session idle this long (ms) is dropped and its partial bytes deleted. */
        uploadSessionIdleMs: z.number().int().positive().default(3_600_000),
        /**
         * Largest upstream answer body kept for one request, bytes (64 MiB): reading stops past it and that request alone
         * fails with `response_too_large`. At most 256 MiB: a body is held as one string, and V8's end near 512 MiB.
         */
        maxResponseBytes: z.number().int().positive().max(256 * 1024 * 1024).default(64 * 1024 * 1024),
      })
      .prefault({}),
    retry: z
      .strictObject({
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
      .record(z.string(), z.strictObject({ input: z.number().nonnegative(), output: z.number().nonnegative(), batchInput: z.number().nonnegative().optional(), batchOutput: z.number().nonnegative().optional() }))
      .default({}),
    /** How long a claimed item stays leased before another worker may take it, ms. Longer than any timeout. */
    leaseMs: z.number().int().positive().optional(),
    /** Where batch events (`batch.completed|failed|expired|cancelled`) are delivered; see engine/webhooks.ts. */
    webhooks: z.array(webhook).default([]),
    webhookDelivery: z
      .strictObject({
        /** How long a delivery is retried from the event, ms (72 h). */
        maxAgeMs: z.number().int().positive().default(72 * 3_600_000),
        /** First backoff step, ms; doubles each attempt, with jitter (a receiver's Retry-After is a floor). */
        baseDelayMs: z.number().int().nonnegative().default(5_000),
        /** Backoff ceiling, ms. */
        maxDelayMs: z.number().int().positive().default(3_600_000),
        /** Per-attempt limit (connect, headers and body), ms. */
        timeoutMs: z.number().int().positive().default(15_000),
        /** Deliveries in flight at once. */
        concurrency: z.number().int().positive().default(8),
      })
      .prefault({}),
    /** How long a client may take to send a request, ms (see "Guarantees" in the README); absent fields keep their defaults. */
    clientTimeouts: z
      .strictObject({
        headersMs: z.number().int().positive().optional(),
        requestMs: z.number().int().positive().optional(),
        idleMs: z.number().int().positive().optional(),
        keepAliveMs: z.number().int().positive().optional(),
      })
      .optional(),
    /** The URL clients reach this server at (behind a proxy), for URLs we hand out; default: the address served. */
    publicURL: z.string().url().optional(),
  })
  .strict();
export type Config = z.infer<typeof configSchema>;

/** True for `whsec_<base64>` whose key is at least 16 bytes: what the openai SDK's `webhooks.unwrap` decodes. */
function isWebhookSecret(value: string): boolean {
  if (!value.startsWith("whsec_")) return false;
  const b64 = value.slice("whsec_".length);
  return /^[A-Za-z0-9+/]+={0,2}$/.test(b64) && b64.length % 4 === 0 && Buffer.from(b64, "base64").length >= 16;
}

/**
 * Validates a parsed config object and resolves `"env:NAME"` secrets from `env`.
 * @throws Error naming the bad field, or the missing environment variable.
 */
export function parseConfig(raw: unknown, env: Record<string, string | undefined> = process.env): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const at = issue.path.join(".") || "(root)";
    if (issue.code === "unrecognized_keys") {
      const known = keysAt(configSchema, issue.path);
      const hints = issue.keys.map((k) => {
        const near = nearest(k, known);
        return near ? `"${k}" (did you mean "${near}"?)` : `"${k}"`;
      });
      throw new Error(`Invalid config at ${at}: unknown key ${hints.join(", ")}; valid keys here: ${known.join(", ")}.`);
    }
    throw new Error(`Invalid config at ${at}: ${issue.message}`);
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
  config.adminKeys = config.adminKeys.map((k, i) => resolve(k, `adminKeys[${i}]`));
  // An admin key is an API key too: every consumer of apiKeys accepts it.
  config.apiKeys = [...new Set([...config.apiKeys, ...config.adminKeys])];
  config.collections.grants.forEach((g, i) => (g.key = resolve(g.key, `collections.grants[${i}].key`)));
  const urls = new Map<string, number>();
  config.webhooks.forEach((w, i) => {
    w.secret = resolve(w.secret, `webhooks[${i}].secret`);
    if (!isWebhookSecret(w.secret)) {
      throw new Error(`Invalid config at webhooks.${i}.secret: expected "whsec_" followed by a base64 key of at least 16 bytes (as OpenAI's dashboard shows it).`);
    }
    // Deliveries are kept per (event, URL): one entry per URL, naming all its events.
    const seen = urls.get(w.url);
    if (seen !== undefined) throw new Error(`Invalid config at webhooks.${i}.url: ${w.url} is already webhooks.${seen}; list all its events in one entry.`);
    urls.set(w.url, i);
  });
  for (const target of Object.values(config.models)) {
    if (!Object.hasOwn(config.providers, target)) throw new Error(`Config models maps to unknown provider "${target}".`);
  }
  return config;
}

/** Zod's internal definition of a schema node: enough to walk objects, records, unions and wrappers. */
type SchemaDef = { type: string; shape?: Record<string, unknown>; valueType?: unknown; element?: unknown; innerType?: unknown; in?: unknown; options?: unknown[] };
const defOf = (schema: unknown): SchemaDef => (schema as { _zod: { def: SchemaDef } })._zod.def;

/** The keys an object in the config schema accepts at `path` (every union member's, for a provider entry). */
function keysAt(schema: unknown, path: readonly PropertyKey[]): string[] {
  let nodes = [schema];
  const unwrap = (n: unknown): unknown[] => {
    const d = defOf(n);
    if (d.innerType) return unwrap(d.innerType);
    if (d.type === "pipe") return unwrap(d.in);
    if (d.options) return d.options.flatMap(unwrap);
    return [n];
  };
  for (const step of path) {
    nodes = nodes.flatMap(unwrap).flatMap((n) => {
      const d = defOf(n);
      if (d.shape) return d.shape[String(step)] ? [d.shape[String(step)]] : [];
      if (d.valueType) return [d.valueType];
      if (d.element) return [d.element];
      return [];
    });
  }
  return [...new Set(nodes.flatMap(unwrap).flatMap((n) => Object.keys(defOf(n).shape ?? {})))];
}

/** The candidate closest to `word` by edit distance, when it is close enough to be a typo (at most a third of its length). */
function nearest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** Levenshtein distance between two short strings. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
