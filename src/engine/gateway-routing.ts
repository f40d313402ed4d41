import { invalidRequest } from "../core/errors.js";
import type { ProviderRegistry } from "../providers/registry.js";
import { isRemote } from "../providers/native/native-apis.js";
import type { KeyVault } from "./key-vault.js";
import type { CreateBatchInput } from "./engine-types.js";

/** Turns a batch's gateway header and batch-mode header into a provider and a sealed upstream key, or a 400. */
export class GatewayRouting {
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly vault: KeyVault,
  ) {}

  /** The provider and sealed upstream key a gateway header names. @throws OpenBatchError 400 for an unknown provider. */
  resolveGateway(gateway: CreateBatchInput["gateway"]): { provider: string | null; sealedKey: string | null } {
    if (!gateway) return { provider: null, sealedKey: null };
    const provider = this.providers.resolveHeader(gateway.provider);
    if (!provider) {
      throw invalidRequest(`Unknown provider "${gateway.provider}": use one of ${this.providers.names().join(", ")}.`, "x-openbatch-provider");
    }
    return { provider, sealedKey: gateway.apiKey ? this.vault.seal(gateway.apiKey) : null };
  }

  /**
   * Refuses `x-openbatch-batch-mode: native` for a provider without a batch API of its own (in-process models), rather
   * than run the batch directly at another price. @throws OpenBatchError 400 (native_unsupported).
   */
  requireBatchApi(provider: string): void {
    const config = this.providers.configOf(provider);
    if (config && !isRemote(config)) {
      throw invalidRequest(`Provider "${provider}" (${config.type}) has no batch API: x-openbatch-batch-mode: native needs an OpenAI, Anthropic or Gemini provider.`, "x-openbatch-batch-mode", "native_unsupported");
    }
  }
}
