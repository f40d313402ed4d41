/**
 * gRPC Search `properties.object_properties` (the client's `returnProperties: [{ name, properties: [...] }]`): which
 * fields of an `object` / `object[]` property to return, nested to any depth. A stored object value is cut to the
 * primitive fields and nested objects asked for; the rest of the hit's properties follow `non_ref_properties`.
 */

/** weaviate.v1.ObjectPropertiesRequest. */
export interface ObjectPropertiesRequestMsg {
  propName?: string;
  primitiveProperties?: string[];
  objectProperties?: ObjectPropertiesRequestMsg[];
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** One object (or each of an array of objects) cut to the fields `req` names; other values pass unchanged. */
function cut(value: unknown, req: ObjectPropertiesRequestMsg): unknown {
  if (Array.isArray(value)) return value.map((v) => cut(v, req));
  if (!isMap(value)) return value;
  const out: Record<string, unknown> = {};
  for (const name of req.primitiveProperties ?? []) if (value[name] !== undefined) out[name] = value[name];
  for (const sub of req.objectProperties ?? []) {
    const name = sub.propName ?? "";
    if (value[name] !== undefined) out[name] = cut(value[name], sub);
  }
  return out;
}

/**
 * A hit's properties with each requested object property cut to its requested fields.
 * @returns the properties (a copy when anything was cut) and the names to return besides `non_ref_properties`.
 */
export function selectObjectProperties(props: Record<string, unknown>, requests: ObjectPropertiesRequestMsg[]): { props: Record<string, unknown>; names: string[] } {
  if (requests.length === 0) return { props, names: [] };
  const out = { ...props };
  const names: string[] = [];
  for (const req of requests) {
    const name = req.propName ?? "";
    names.push(name);
    if (out[name] !== undefined) out[name] = cut(out[name], req);
  }
  return { props: out, names };
}
