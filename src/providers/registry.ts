import picomatch from "picomatch";
import { providerConfigSchema, type Config, type ProviderConfig } from "../core/config.js";
import { AnthropicProvider } from "./anthropic.js";
import { GeminiProvider } from "./gemini.js";
import { GLOVE_MODEL, LocalEmbeddingsProvider } from "./local/local-embeddings.js";
import { LocalLlmProvider } from "./local/local-llm.js";
import { OpenAICompatibleProvider } from "./openai-compatible.js";
import type { Provider } from "./provider.js";

/** Well-known upstreams a gateway call may name in `x-openbatch-provider` without configuring them. */
const PRESETS: Record<string, ProviderConfig> = {
  openai: providerConfigSchema.parse({ type: "openai-compatible", baseURL: "https://api.openai.com/v1", maxConcurrency: 64 }),
  xai: providerConfigSchema.parse({ type: "openai-compatible", baseURL: "https://api.x.ai/v1", maxConcurrency: 64 }),
};

/** The built-in local embeddings provider's config (all defaults). */
const BUILTIN_LOCAL_CONFIG: ProviderConfig = providerConfigSchema.parse({ type: "local-embeddings" });

/** Name of the built-in provider that serves `local/glove-100d` with no config. */
export const BUILTIN_LOCAL = "local";

/** Where providers keep what they derive on disk (e.g. the word-vector cache). */
export interface ProviderContext {
  cacheDir: string;
}

/** Builds a provider from its config entry. */
export function createProvider(name: string, config: ProviderConfig, ctx: ProviderContext): Provider {
  switch (config.type) {
    case "openai-compatible":
      return new OpenAICompatibleProvider(name, config);
    case "anthropic":
      return new AnthropicProvider(name, config);
    case "gemini":
      return new GeminiProvider(name, config);
    case "local-embeddings":
      return new LocalEmbeddingsProvider(name, ctx.cacheDir, config.embeddingsCoalesce);
    case "local-llm":
      return new LocalLlmProvider(name, config, ctx.cacheDir);
  }
}

/**
 * The configured providers and the model routes (`models`: exact id or glob → provider name, first match wins).
 * Presets (openai, xai) are built on first use.
 */
export class ProviderRegistry {
  private readonly providers = new Map<string, Provider>();
  private readonly routes: { match: (model: string) => boolean; provider: string }[];

  constructor(
    private readonly config: Config,
    private readonly ctx: ProviderContext,
  ) {
    for (const [name, p] of Object.entries(config.providers)) this.providers.set(name, createProvider(name, p, ctx));
    this.routes = Object.entries(config.models).map(([glob, provider]) => ({ match: picomatch(glob), provider }));
  }

  /** The provider called `name` (configured, or a preset), or undefined. */
  get(name: string): Provider | undefined {
    let p = this.providers.get(name);
    if (!p && (Object.hasOwn(PRESETS, name) || name === BUILTIN_LOCAL)) {
      p = createProvider(name, Object.hasOwn(PRESETS, name) ? PRESETS[name]! : BUILTIN_LOCAL_CONFIG, this.ctx);
      this.providers.set(name, p);
    }
    return p;
  }

  /** The config entry of provider `name` (configured, a preset, or the built-in local one), or undefined. */
  configOf(name: string): ProviderConfig | undefined {
    if (Object.hasOwn(this.config.providers, name)) return this.config.providers[name];
    if (Object.hasOwn(PRESETS, name)) return PRESETS[name];
    return name === BUILTIN_LOCAL ? BUILTIN_LOCAL_CONFIG : undefined;
  }

  /** Provider name that serves `model` per the `models` routes, or null when none matches. */
  routeModel(model: string | null): string | null {
    // The embedded model is always served, whatever the user's globs say.
    if (model === GLOVE_MODEL && !Object.hasOwn(this.config.providers, BUILTIN_LOCAL)) return BUILTIN_LOCAL;
    for (const r of this.routes) if (r.match(model ?? "")) return r.provider;
    return null;
  }

  /**
   * Resolves a gateway provider header: a configured provider name, then the first configured provider of that type,
   * then a preset. @returns the provider name, or null when nothing matches.
   */
  resolveHeader(value: string): string | null {
    // Own keys only: a header such as "constructor" must not match Object.prototype.
    if (Object.hasOwn(this.config.providers, value)) return value;
    const byType = Object.entries(this.config.providers).find(([, p]) => p.type === value);
    if (byType) return byType[0];
    return Object.hasOwn(PRESETS, value) ? value : null;
  }

  /** Exact model ids the routes name (globs left out), and the built-in embeddings model. */
  modelIds(): string[] {
    const exact = Object.keys(this.config.models).filter((m) => !/[*?[\]{}!]/.test(m));
    return [...new Set([GLOVE_MODEL, ...exact])];
  }

  /** Names a user may route to (configured ones and presets). */
  names(): string[] {
    return [...new Set([...Object.keys(this.config.providers), BUILTIN_LOCAL, ...Object.keys(PRESETS)])];
  }

  async close(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => p.close()));
  }
}
