import { invalidRequest } from "./errors.js";

/**
 * Validates OpenAI-style object metadata: at most 16 pairs, keys ≤ 64 chars, string values ≤ 512 chars.
 * @returns the metadata or null when absent. @throws OpenBatchError(invalid_request, param "metadata").
 */
export function validateMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) throw invalidRequest("metadata must be an object.", "metadata");
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 16) throw invalidRequest("metadata may hold at most 16 key-value pairs.", "metadata");
  for (const [k, v] of entries) {
    if (k.length > 64) throw invalidRequest(`metadata key "${k.slice(0, 20)}…" is longer than 64 characters.`, "metadata");
    if (typeof v !== "string") throw invalidRequest(`metadata value for "${k}" must be a string.`, "metadata");
    if (v.length > 512) throw invalidRequest(`metadata value for "${k}" is longer than 512 characters.`, "metadata");
  }
  return value as Record<string, string>;
}
