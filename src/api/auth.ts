import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { OpenBatchError } from "../core/errors.js";

/** Headers that name an upstream provider for gateway routing (seed 002; Portkey's name is accepted too). */
export const PROVIDER_HEADERS = ["x-openbatch-provider", "x-portkey-provider"] as const;

/** The gateway part of a request: the provider it names and the upstream key in its Authorization header. */
export function gatewayOf(headers: IncomingHttpHeaders): { provider: string; apiKey: string | null } | undefined {
  for (const h of PROVIDER_HEADERS) {
    const value = headers[h];
    if (typeof value === "string" && value) return { provider: value, apiKey: bearer(headers.authorization) };
  }
  return undefined;
}

/** The header that overrides a provider's batchMode for one batch at create. */
export const BATCH_MODE_HEADER = "x-openbatch-batch-mode";

/**
 * The run mode a create call asks for in `x-openbatch-batch-mode` (`native`: the provider's own batch API; `direct`:
 * we send each request), or undefined when it sends none. @throws OpenBatchError 400 for any other value.
 */
export function batchModeOf(headers: IncomingHttpHeaders): "native" | "direct" | undefined {
  const value = headers[BATCH_MODE_HEADER];
  if (value === undefined) return undefined;
  if (value === "native" || value === "direct") return value;
  throw new OpenBatchError("invalid_request", `Header ${BATCH_MODE_HEADER} must be "native" or "direct", not ${JSON.stringify(value)}.`, { param: BATCH_MODE_HEADER, code: "invalid_batch_mode" });
}

function bearer(value: string | undefined): string | null {
  const m = /^Bearer\s+(.+)$/i.exec(value ?? "");
  return m ? m[1]!.trim() : null;
}

/** The owner fingerprint stored with objects: sha256 of the key, 16 hex chars (the key itself is never stored). */
export function ownerOf(apiKey: string): string {
  return createHash("sha256").update(apiKey).digest("hex").slice(0, 16);
}

/**
 * Checks OpenBatch API keys. With no keys configured every caller is accepted and sees everything (caller null).
 * With keys, the key comes from `x-openbatch-api-key` when a gateway provider header is present (Authorization then
 * carries the upstream key), else from `Authorization: Bearer`, `x-api-key` or `x-goog-api-key`.
 */
export class ApiKeyAuth {
  private readonly keys: Buffer[];
  private readonly admins: ReadonlySet<string>;
  /**
   * @param keys the accepted keys.
   * @param adminKeys admin keys (config `adminKeys`): accepted too, and the ones `isAdmin` is true for.
   */
  constructor(keys: readonly string[], adminKeys: readonly string[] = []) {
    this.keys = [...new Set([...keys, ...adminKeys])].map((k) => Buffer.from(k));
    this.admins = new Set(adminKeys.map(ownerOf));
  }

  /** Whether `caller` (an owner fingerprint from `authenticate`) holds an admin key; always true with auth off. */
  isAdmin(caller: string | null): boolean {
    return !this.enabled || (caller !== null && this.admins.has(caller));
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /**
   * @returns the caller's owner fingerprint, or null when auth is off.
   * @throws OpenBatchError 401 when auth is on and no valid key was sent.
   */
  authenticate(headers: IncomingHttpHeaders): string | null {
    if (!this.enabled) return null;
    const key = gatewayOf(headers)
      ? header(headers["x-openbatch-api-key"])
      : (bearer(headers.authorization) ?? header(headers["x-api-key"]) ?? header(headers["x-goog-api-key"]));
    if (!key) throw new OpenBatchError("authentication", "Missing API key: send it as 'Authorization: Bearer <key>' (or in x-openbatch-api-key with a provider header).", { code: "missing_api_key" });
    const given = Buffer.from(key);
    if (!this.keys.some((k) => k.length === given.length && timingSafeEqual(k, given))) {
      throw new OpenBatchError("authentication", "Incorrect API key provided.", { code: "invalid_api_key" });
    }
    return ownerOf(key);
  }
}

function header(value: string | string[] | undefined): string | null {
  return typeof value === "string" && value ? value : null;
}
