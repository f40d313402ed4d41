import { hostname } from "node:os";
import { CollectionError, unprocessable } from "../../collections/errors.js";

/** The consistency levels Weaviate names (`replica.One|Quorum|All`); OpenBatch's one replica meets each. */
const LEVELS = new Set(["ONE", "QUORUM", "ALL"]);

/**
 * Checks the replication query parameters of Weaviate's object and batch routes as Weaviate's REST handlers do
 * (getReplicationProperties): `consistency_level` must be ONE, QUORUM or ALL (400, Weaviate's message), and cannot be
 * given with `node_name` (400). OpenBatch is one node, `hostname()` (the name `/v1/nodes` gives): a `node_name`
 * other than it is 422, since there is no such node to read from. A valid value needs nothing more.
 * @param query the route's parsed query string.
 * @throws CollectionError 400 / 422 as above, naming the parameter.
 */
export function checkReplicationParams(query: unknown): void {
  const q = (typeof query === "object" && query !== null ? query : {}) as Record<string, unknown>;
  const level = q.consistency_level;
  const node = q.node_name;
  if (level !== undefined) {
    if (typeof level !== "string" || !LEVELS.has(level)) {
      throw new CollectionError(400, `unrecognized consistency level '${Array.isArray(level) ? level.join(",") : String(level)}', try one of the following: ['ONE', 'QUORUM', 'ALL']`);
    }
  }
  // An empty node_name is no node name, as Weaviate reads it.
  if (node === undefined || node === "") return;
  if (level !== undefined) throw new CollectionError(400, "consistency_level and node_name are mutually exclusive");
  if (typeof node !== "string" || node !== hostname()) throw unprocessable(`node_name '${String(node)}' is not a node of this cluster: OpenBatch is one node, '${hostname()}'`);
}
