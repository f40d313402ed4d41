/**
 * An RFC 3339 / ISO 8601 timestamp for unix ms, or null when there is none or it is outside what a Date holds
 * (a stored value from an older build must never turn a read into a 500).
 */
export function isoTime(ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return null;
  return new Date(ms).toISOString();
}
