import type { ProviderConfig } from "../../core/config.js";
import type { NativeBatchApi } from "./native-api.js";
import { ANTHROPIC_LIMITS, AnthropicBatches } from "./anthropic-batches.js";
import { GEMINI_LIMITS, GeminiBatches } from "./gemini-batches.js";
import { OPENAI_LIMITS, OpenAIBatches } from "./openai-batches.js";

type RemoteConfig = Extract<ProviderConfig, { type: "openai-compatible" | "anthropic" | "gemini" }>;

/** The vendors' own API origins: a provider pointing at one of them runs `auto` when it sets no batchMode. */
const VENDOR_ORIGINS = ["https://api.openai.com", "https://api.anthropic.com", "https://generativelanguage.googleapis.com"];

/** Time a single vendor call (create, poll, download) may take, ms. */
const VENDOR_CALL_TIMEOUT_MS = 300_000;

/** True for the provider types that may have a batch API of their own. */
export function isRemote(config: ProviderConfig): config is RemoteConfig {
  return config.type === "openai-compatible" || config.type === "anthropic" || config.type === "gemini";
}

/**
 * A provider's batch mode: its `batchMode` when set; otherwise `auto` when its baseURL is the vendor's own API
 * (OpenAI, Anthropic, Gemini: they have a batch API), else `direct` (a self-hosted server, a proxy or a test double
 * has none, as far as we know). In-process providers are always direct.
 */
export function effectiveBatchMode(config: ProviderConfig): "direct" | "native" | "auto" {
  if (!isRemote(config)) return "direct";
  if (config.batchMode) return config.batchMode;
  let origin = "";
  try {
    origin = new URL(config.baseURL).origin;
  } catch {
    return "direct";
  }
  return VENDOR_ORIGINS.includes(origin) ? "auto" : "direct";
}

/**
 * The batch-API adapter of a remote provider, with its limits (config `nativeMaxRequests`/`nativeMaxBytes` over the
 * vendor's), or null for providers without one (in-process models).
 */
export function createNativeApi(name: string, config: ProviderConfig): NativeBatchApi | null {
  if (!isRemote(config)) return null;
  const limits = (defaults: { maxRequests: number; maxBytes: number }) => ({
    maxRequests: config.nativeMaxRequests ?? defaults.maxRequests,
    maxBytes: config.nativeMaxBytes ?? defaults.maxBytes,
  });
  switch (config.type) {
    case "openai-compatible":
      return new OpenAIBatches(name, config.baseURL, config.apiKey, config.headers, limits(OPENAI_LIMITS), VENDOR_CALL_TIMEOUT_MS);
    case "anthropic":
      return new AnthropicBatches(name, config.baseURL, config.apiKey, config.headers, limits(ANTHROPIC_LIMITS), VENDOR_CALL_TIMEOUT_MS);
    case "gemini":
      return new GeminiBatches(name, config.baseURL, config.apiKey, config.headers, limits(GEMINI_LIMITS), VENDOR_CALL_TIMEOUT_MS, config.nativeInlineMaxBytes);
  }
}
