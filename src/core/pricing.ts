import picomatch from "picomatch";

/**
 * Prices of one model in USD per 1 million tokens. Batch prices default to half the regular ones (the common vendor
 * discount) when not given.
 */
export interface ModelPrice {
  input: number;
  output: number;
  batchInput?: number;
  batchOutput?: number;
}

/** Token counts to price. */
export interface TokenCounts {
  input: number;
  output: number;
}

/** Regular and batch cost of some tokens, USD. */
export interface CostEstimate {
  regular: number;
  batch: number;
  /**
   * What the run costs as it ran: batch prices for the tokens of items run on the provider's own batch API (native
   * mode), regular prices for those OpenBatch sent itself (direct mode). Absent where the split is not known.
   */
  charged?: number;
}

/** The price of `model` from a table keyed by model id or glob (first match wins), or null when none matches. */
export function priceOf(table: Record<string, ModelPrice>, model: string | null): ModelPrice | null {
  if (model === null) return null;
  for (const [glob, price] of Object.entries(table)) if (picomatch(glob)(model)) return price;
  return null;
}

/** Cost of `tokens` at `price`, USD. */
export function costOf(price: ModelPrice, tokens: TokenCounts): CostEstimate {
  const m = 1_000_000;
  return {
    regular: (tokens.input * price.input + tokens.output * price.output) / m,
    batch: (tokens.input * (price.batchInput ?? price.input / 2) + tokens.output * (price.batchOutput ?? price.output / 2)) / m,
  };
}
