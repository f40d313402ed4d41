import type { ModelPrice } from "../core/pricing.js";
import type { Engine } from "../engine/engine.js";
import type { ProviderRateLimiter } from "../engine/rate-limiter.js";

/*
 * What the dashboard reads of the engine beyond its public operations. Engine keeps its dispatcher and config
 * private; the two things the dashboard needs from them (rate limiter state, model prices) are read here only, so a
 * public accessor on Engine can replace this file without touching anything else. Read-only: nothing here changes
 * engine state.
 */

/** Rate limiters made so far, by provider name (Dispatcher.rateLimiters): concurrency window, budgets, 429s, pause. */
export function rateLimitersOf(engine: Engine): ReadonlyMap<string, ProviderRateLimiter> {
  // Element access reaches the private field on purpose (see the file comment).
  return engine["dispatcher"].rateLimiters();
}

/** Calls in flight from this process to `provider` (Dispatcher.inFlightCount). */
export function inFlightOf(engine: Engine, provider: string): number {
  return engine["dispatcher"].inFlightCount(provider);
}

/** The config's model prices, USD per 1 M tokens, by model id or glob (first match wins). */
export function pricesOf(engine: Engine): Record<string, ModelPrice> {
  return engine["config"].prices;
}

/** The configured batchMode of a provider ("direct", "native", "auto"), or undefined. */
export function batchModeOf(engine: Engine, provider: string): string | undefined {
  const c = engine.providers.configOf(provider) as { batchMode?: string } | undefined;
  return c?.batchMode;
}

/** Most request lines one batch may hold (config limits.maxRequestsPerBatch). */
export function maxRequestsOf(engine: Engine): number {
  return engine["config"].limits.maxRequestsPerBatch;
}
