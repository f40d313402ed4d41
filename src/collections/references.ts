import type { StoredReference } from "../store/collection-store.js";
import { isUuid, normalizeClassName, normalizePropertyName } from "./schema.js";

/** A reference target parsed from `weaviate://localhost/<Class>/<uuid>` or `weaviate://localhost/<uuid>`. */
export interface BeaconTarget {
  /** Null when the beacon names the uuid only. */
  class: string | null;
  id: string;
}

/** A reference source parsed from `weaviate://localhost/<Class>/<uuid>/<property>`. */
export interface BeaconSource {
  class: string;
  id: string;
  property: string;
}

const PREFIX = "weaviate://";

/** The path segments of a beacon on the local peer. @returns the segments, or an error message. */
function segments(beacon: unknown, what: string): string[] | { error: string } {
  if (typeof beacon !== "string" || !beacon.startsWith(PREFIX)) return { error: `invalid ${what} beacon ${JSON.stringify(beacon ?? null)}: must start with ${PREFIX}` };
  const [peer, ...parts] = beacon.slice(PREFIX.length).split("/");
  if (peer !== "localhost") return { error: `${what} must always point to the local peer, but got ${peer}` };
  return parts;
}

/** Parses a target beacon. @returns the target, or an error message. */
export function parseTargetBeacon(beacon: unknown): BeaconTarget | { error: string } {
  const parts = segments(beacon, "target");
  if (!Array.isArray(parts)) return parts;
  const usage = `invalid target beacon ${JSON.stringify(beacon)}: must be weaviate://localhost/<Class>/<uuid> or weaviate://localhost/<uuid>`;
  if (parts.length === 1 && isUuid(parts[0]!)) return { class: null, id: parts[0]!.toLowerCase() };
  if (parts.length === 2 && parts[0] && isUuid(parts[1]!)) return { class: normalizeClassName(parts[0]), id: parts[1]!.toLowerCase() };
  return { error: usage };
}

/** Parses a source beacon. @returns the source, or an error message. */
export function parseSourceBeacon(beacon: unknown): BeaconSource | { error: string } {
  const parts = segments(beacon, "source");
  if (!Array.isArray(parts)) return parts;
  if (parts.length === 3 && parts[0] && isUuid(parts[1]!) && parts[2]) {
    return { class: normalizeClassName(parts[0]), id: parts[1]!.toLowerCase(), property: normalizePropertyName(parts[2]) };
  }
  return { error: `invalid source beacon ${JSON.stringify(beacon)}: must be weaviate://localhost/<Class>/<uuid>/<property>` };
}

/** The class a beacon names, if any (for auto-schema). */
export function beaconClass(beacon: string): string | null {
  const t = parseTargetBeacon(beacon);
  return "error" in t ? null : t.class;
}

/** A reference as Weaviate renders it in an object's properties. */
export const renderReference = (toClass: string, toId: string) => ({ beacon: `weaviate://localhost/${toClass}/${toId}`, href: `/v1/objects/${toClass}/${toId}` });

/** Adds each object's references to its properties, `{prop: [{beacon, href}, …]}`, in insertion order. */
export function mergeReferences(properties: Record<string, unknown>, refs: readonly StoredReference[]): Record<string, unknown> {
  if (!refs.length) return properties;
  const out = { ...properties };
  for (const r of refs) {
    const list = Array.isArray(out[r.property]) ? (out[r.property] as unknown[]) : [];
    out[r.property] = [...list, renderReference(r.to_class, r.to_id)];
  }
  return out;
}
