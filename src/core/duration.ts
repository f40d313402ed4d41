import { invalidRequest } from "./errors.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The longest completion window accepted: 365 days, in ms. Far longer than any vendor's, and far inside what a Date holds. */
export const MAX_COMPLETION_WINDOW_MS = 365 * 86_400_000;

/**
 * Parses a completion window such as "24h" (OpenAI's only value), or our extension: any positive duration made of
 * number+unit pairs, e.g. "90s", "1h30m", "2d", "500ms".
 * @returns the window in ms, at most MAX_COMPLETION_WINDOW_MS.
 * @throws OpenBatchError(invalid_request, param "completion_window") for anything else, or a window over 365 days.
 */
export function parseCompletionWindow(text: unknown): number {
  // The length bound keeps the pattern's work and the sum's digits small before any arithmetic.
  if (typeof text !== "string" || text.length > 64 || !/^(\d+(ms|s|m|h|d))+$/.test(text)) {
    throw invalidRequest(
      `Invalid completion_window ${JSON.stringify(text)}: use "24h" or a duration such as "90s", "1h", "1h30m".`,
      "completion_window",
    );
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(n) * UNIT_MS[unit!]!;
  if (!(ms <= MAX_COMPLETION_WINDOW_MS)) {
    throw invalidRequest(`completion_window ${JSON.stringify(text)} is longer than the longest accepted window, 365d.`, "completion_window");
  }
  if (ms <= 0) throw invalidRequest("completion_window must be longer than zero.", "completion_window");
  return ms;
}
