import type { ReferencedObject, ReferenceRequest } from "../../collections/collection-service.js";
import { normalizePropertyName, type ClassDef } from "../../collections/schema.js";
import { floatsToBytes, toProperties } from "./conversion.js";
import { selectObjectProperties, type ObjectPropertiesRequestMsg } from "./nested-properties.js";
import type { ValueMsg } from "./messages.js";

/*
 * gRPC Search `properties.ref_properties` (the client's `returnReferences: [{linkOn, returnProperties, returnMetadata,
 * includeVector, targetCollection}]`, nested through each one's `properties.ref_properties` to any depth) read into
 * ReferenceRequests, and the referenced objects (collections/reference-query.ts) rendered back as Weaviate does:
 * `PropertiesResult.ref_props` = one RefPropertiesResult `{prop_name, properties: [PropertiesResult …]}` per property
 * that has referenced objects, each object with its `metadata` (id always, the rest as asked), `target_collection`,
 * `non_ref_props` as `properties` asks (object fields cut as in nested-properties.ts) and its own `ref_props`. The
 * client reads these into `obj.references[prop].objects`.
 */

/** weaviate.v1.MetadataRequest. */
export interface MetadataRequestMsg {
  uuid?: boolean;
  vector?: boolean;
  creationTimeUnix?: boolean;
  lastUpdateTimeUnix?: boolean;
  distance?: boolean;
  certainty?: boolean;
  score?: boolean;
  explainScore?: boolean;
  isConsistent?: boolean;
  vectors?: string[];
}

/** weaviate.v1.PropertiesRequest. */
export interface PropertiesRequestMsg {
  nonRefProperties?: string[];
  returnAllNonrefProperties?: boolean;
  refProperties?: RefPropertiesRequestMsg[];
  objectProperties?: ObjectPropertiesRequestMsg[];
}

/** weaviate.v1.RefPropertiesRequest. */
export interface RefPropertiesRequestMsg {
  referenceProperty?: string;
  properties?: PropertiesRequestMsg;
  metadata?: MetadataRequestMsg;
  targetCollection?: string;
}

/** weaviate.v1.PropertiesResult of a referenced object. */
interface PropertiesResultMsg {
  nonRefProps: { fields: Record<string, ValueMsg> };
  targetCollection: string;
  metadata?: Record<string, unknown>;
  refProps: { propName: string; properties: PropertiesResultMsg[] }[];
  refPropsRequested: boolean;
}

/** What a vector-bearing result has. */
interface WithVectors {
  vector: number[] | null;
  vectors: Record<string, number[]> | null;
}

/** The reference requests of a `PropertiesRequest`, nested ones included (empty when it asks for none). */
export function referenceRequests(props: PropertiesRequestMsg | undefined): ReferenceRequest[] {
  return (props?.refProperties ?? []).map((r) => ({
    property: r.referenceProperty ?? "",
    ...(r.targetCollection ? { targetClass: r.targetCollection } : {}),
    includeVector: r.metadata?.vector === true || (r.metadata?.vectors ?? []).length > 0,
    references: referenceRequests(r.properties),
  }));
}

/**
 * The `non_ref_props` of a result: every non-reference property when `props` is absent or asks for all, else those
 * named, with the object fields asked for (nested-properties.ts).
 */
export function nonRefProps(properties: Record<string, unknown>, def: ClassDef | null, props: PropertiesRequestMsg | undefined): { fields: Record<string, ValueMsg> } {
  const only = !props || props.returnAllNonrefProperties ? null : new Set((props.nonRefProperties ?? []).map(normalizePropertyName));
  const sel = selectObjectProperties(properties, props?.objectProperties ?? []);
  return toProperties(sel.props, def, only && sel.names.length ? new Set([...only, ...sel.names.map(normalizePropertyName)]) : only);
}

/**
 * The vector fields of a result's metadata as the client reads them: `vector_bytes` for a class with the legacy
 * vector, named `vectors` (all with `vector`, else those in `vectors`) for one with named vectors; none when not asked.
 */
export function vectorFields(h: WithVectors, meta: MetadataRequestMsg, named: boolean): Record<string, unknown> {
  const want = new Set(meta.vectors ?? []);
  if (meta.vector !== true && want.size === 0) return {};
  if (!named) return h.vector ? { vectorBytes: floatsToBytes(h.vector) } : {};
  const list = Object.entries(h.vectors ?? {})
    .filter(([name]) => meta.vector === true || want.has(name))
    .map(([name, v]) => ({ name, vectorBytes: floatsToBytes(v), type: 1 }));
  return list.length ? { vectors: list } : {};
}

/**
 * The `ref_props` of one result: for each request (in order) that found objects, its property's referenced objects.
 * @param resolved one list per request, as CollectionService.resolveReferences answers for the result.
 * @param classOf the definition of a class by name (null when unknown), for typing the objects' properties.
 */
export function renderReferences(requests: RefPropertiesRequestMsg[], resolved: ReferencedObject[][], classOf: (name: string) => ClassDef | null): PropertiesResultMsg["refProps"] {
  const out: PropertiesResultMsg["refProps"] = [];
  requests.forEach((r, i) => {
    const objects = resolved[i] ?? [];
    if (objects.length) out.push({ propName: normalizePropertyName(r.referenceProperty ?? ""), properties: objects.map((o) => renderObject(o, r, classOf)) });
  });
  return out;
}

function renderObject(o: ReferencedObject, r: RefPropertiesRequestMsg, classOf: (name: string) => ClassDef | null): PropertiesResultMsg {
  const def = classOf(o.class);
  const meta = r.metadata ?? {};
  const nested = r.properties?.refProperties ?? [];
  return {
    nonRefProps: nonRefProps(o.properties, def, r.properties),
    targetCollection: o.class,
    metadata: {
      id: o.id,
      ...(meta.creationTimeUnix ? { creationTimeUnix: o.creationTimeUnix, creationTimeUnixPresent: true } : {}),
      ...(meta.lastUpdateTimeUnix ? { lastUpdateTimeUnix: o.lastUpdateTimeUnix, lastUpdateTimeUnixPresent: true } : {}),
      ...(meta.isConsistent ? { isConsistent: true, isConsistentPresent: true } : {}),
      ...vectorFields(o, meta, def?.vectorConfig !== undefined),
    },
    refProps: renderReferences(nested, o.references, classOf),
    refPropsRequested: nested.length > 0,
  };
}
