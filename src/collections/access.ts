import { COLLECTION_ACTIONS } from "../core/config.js";
import { CollectionError } from "./errors.js";

/*
 * Who may do what to which collection, when API keys are on. A caller is the owner fingerprint of its key (see
 * api/auth.ts ownerOf), or null when auth is off (then everything is allowed, as before tenancy existed).
 *
 * - The key that creates a collection (POST /v1/schema, or auto-schema on import) owns it: every action.
 * - Admin keys (config `adminKeys`) may do everything to every collection, as Weaviate's admin (root) users.
 * - Grants (config `collections.grants`) give a key actions on collections by name or glob, as Weaviate's RBAC roles
 *   do per collection. A collection created with auth off has no owner: only admins and grants reach it.
 */

/**
 * What a grant allows on a collection:
 * - `read`: its schema, objects by id, listings, GraphQL Get/Aggregate, gRPC Search, and being a reference target;
 * - `write`: importing, replacing and deleting its objects (batch and one by one), and references from it;
 * - `manage`: adding properties and deleting the collection.
 * Actions are independent: a key that should read and write lists both.
 */
export { COLLECTION_ACTIONS };
export type CollectionAction = (typeof COLLECTION_ACTIONS)[number];

/** Who is calling: the owner fingerprint of its API key, or null when auth is off. */
export type Caller = string | null;

/** A grant as the policy keeps it: the owner fingerprint of a key, collection name globs, and actions. */
export interface CollectionGrant {
  owner: string;
  /** Collection names, `*` matching any run of characters (`Article*`); the first letter is upper-cased as class names are. */
  collections: readonly string[];
  actions: readonly CollectionAction[];
}

/** Weaviate's RBAC names for our actions, used in the 403 message. */
const WEAVIATE_VERB: Record<CollectionAction, string> = { read: "read_data", write: "update_data", manage: "update_collections" };

const globToRegExp = (glob: string) => {
  const g = glob.charAt(0).toUpperCase() + glob.slice(1);
  return new RegExp(`^${g.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
};

/** The access policy of a server's collections: admin keys and grants (owners are per collection, in the store). */
export class CollectionAccess {
  private readonly admins: ReadonlySet<string>;
  private readonly grants: { owner: string; patterns: RegExp[]; actions: ReadonlySet<CollectionAction> }[];

  /**
   * @param admins owner fingerprints of the admin keys.
   * @param grants grants by owner fingerprint.
   */
  constructor(admins: Iterable<string> = [], grants: readonly CollectionGrant[] = []) {
    this.admins = new Set(admins);
    this.grants = grants.map((g) => ({ owner: g.owner, patterns: g.collections.map(globToRegExp), actions: new Set(g.actions) }));
  }

  /** An access policy with no admins and no grants: each key reaches only the collections it created. */
  static readonly ownersOnly = new CollectionAccess();

  /**
   * Whether `caller` may do `action` on the collection `cls` owned by `owner`.
   * @param caller owner fingerprint of the caller's key; null (auth off) is always allowed.
   * @param owner the collection's owner fingerprint; null when it was created with auth off.
   */
  allows(caller: Caller, action: CollectionAction, cls: string, owner: string | null): boolean {
    if (caller === null || caller === owner || this.admins.has(caller)) return true;
    return this.grants.some((g) => g.owner === caller && g.actions.has(action) && g.patterns.some((p) => p.test(cls)));
  }

  /** Whether `caller` may do anything at all on the collection: what decides whether listings show it. */
  sees(caller: Caller, cls: string, owner: string | null): boolean {
    return COLLECTION_ACTIONS.some((a) => this.allows(caller, a, cls, owner));
  }

  /** @throws CollectionError 403 in Weaviate's words unless `caller` may do `action` on the collection. */
  require(caller: Caller, action: CollectionAction, cls: string, owner: string | null): void {
    if (!this.allows(caller, action, cls, owner)) throw new CollectionError(403, forbiddenMessage(action, cls));
  }
}

/** How every 403 message starts, so a per-object error can be told from a validation error. */
export const FORBIDDEN_PREFIX = "forbidden: ";

/** Weaviate's 403 message (RBAC): the action refused and the collection it was refused on. */
export function forbiddenMessage(action: CollectionAction, cls: string): string {
  return `${FORBIDDEN_PREFIX}this API key has insufficient permissions to ${WEAVIATE_VERB[action]} [Domain: collections, Collection: ${cls}]: it is neither its owner, an admin key, nor granted "${action}" on it (config collections.grants)`;
}
