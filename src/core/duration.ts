import { invalidRequest } from "./errors.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a completion window such as "24h" (OpenAI's only value), or our extension: any positive duration made of
 * number+unit pairs, e.g. "90s", "1h30m", "2d", "500ms".
 * @returns the window in ms.
 * @throws OpenBatchError(invalid_request, param "completion_window") for anything else.
 */
export function parseCompletionWindow(text: unknown): number {
  if (typeof text !== "string" || !/^(\d+(ms|s|m|h|d))+$/.test(text)) {
    throw invalidRequest(
      `Invalid completion_window ${JSON.stringify(text)}: use "24h" or a duration such as "90s", "1h", "1h30m".`,
      "completion_window",
    );
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(n) * UNIT_MS[unit!]!;
  if (ms <= 0) throw invalidRequest("completion_window must be longer than zero.", "completion_window");
  return ms;
}
