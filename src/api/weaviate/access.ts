import { CollectionAccess } from "../../collections/access.js";
import type { Config } from "../../core/config.js";
import { ownerOf } from "../auth.js";

/**
 * The collections' access policy from the config: admin keys and `collections.grants`, by owner fingerprint (keys
 * are never kept). A grant's key must be one of the keys the server accepts (`apiKeys`, which holds the admin keys).
 * @param apiKeys every accepted key (config apiKeys after OPENBATCH_API_KEYS is merged in).
 * @throws Error naming the grant whose key is not an accepted one (it would never apply).
 */
export function collectionAccessOf(apiKeys: readonly string[], adminKeys: readonly string[], grants: Config["collections"]["grants"]): CollectionAccess {
  const accepted = new Set([...apiKeys, ...adminKeys]);
  grants.forEach((g, i) => {
    if (!accepted.has(g.key)) throw new Error(`Config collections.grants[${i}].key is not one of apiKeys or adminKeys: the grant would never apply.`);
  });
  return new CollectionAccess(
    adminKeys.map(ownerOf),
    grants.map((g) => ({ owner: ownerOf(g.key), collections: g.collections, actions: g.actions })),
  );
}
