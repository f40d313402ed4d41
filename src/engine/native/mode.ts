import picomatch from "picomatch";
import type { Config } from "../../core/config.js";
import { GLOVE_MODEL } from "../../providers/local/local-embeddings.js";
import { effectiveBatchMode, isRemote } from "../../providers/native/native-apis.js";
import { BUILTIN_LOCAL } from "../../providers/registry.js";
import type { RunMode } from "../../store/vendor-jobs.js";


/** How a batch would run, and why. */
export interface PlannedMode {
  provider: string | null;
  mode: RunMode;
  reason: string;
}

/**
 * The mode a batch of `model` with a `windowMs` completion window would run in under `config`, as the native runner
 * decides it (no `x-openbatch-batch-mode` header): the routed provider's batchMode; `auto` is native when the window is
 * at least the provider's nativeWindowMs. For `openbatch estimate`.
 */
export function plannedMode(config: Config, model: string | null, windowMs = 86_400_000): PlannedMode {
  let provider: string | null = null;
  if (model === GLOVE_MODEL && !Object.hasOwn(config.providers, BUILTIN_LOCAL)) provider = BUILTIN_LOCAL;
  else provider = Object.entries(config.models).find(([glob]) => picomatch(glob)(model ?? ""))?.[1] ?? null;
  const p = provider !== null && Object.hasOwn(config.providers, provider) ? config.providers[provider]! : null;
  if (!p) return { provider, mode: "direct", reason: provider ? `provider "${provider}" is built in (no batch API)` : "no provider routes this model" };
  if (!isRemote(p)) return { provider, mode: "direct", reason: `provider "${provider}" (${p.type}) has no batch API` };
  const mode = effectiveBatchMode(p);
  if (mode === "native") return { provider, mode, reason: `provider "${provider}" has batchMode "native"` };
  if (mode === "direct") return { provider, mode, reason: `provider "${provider}" has batchMode "direct"${p.type === "openai-compatible" && !p.batchMode ? " (the default for a baseURL other than the vendor's own)" : ""}` };
  const window = "nativeWindowMs" in p ? p.nativeWindowMs : 86_400_000;
  return windowMs >= window
    ? { provider, mode: "native", reason: `batchMode "auto" and a ${windowMs / 3_600_000} h window, at least the provider's ${window / 3_600_000} h batch window` }
    : { provider, mode: "direct", reason: `batchMode "auto" and a ${windowMs / 3_600_000} h window, shorter than the provider's ${window / 3_600_000} h batch window` };
}
