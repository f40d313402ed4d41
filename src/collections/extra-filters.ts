import { unprocessable } from "./errors.js";
import { normalizePropertyName, type ClassDef, type PropertyDef } from "./schema.js";

/*
 * `where` filters beyond a property's values (where-filter.ts calls these):
 *   - property length: `path: ["len(prop)"]` with valueInt and Equal / NotEqual / GreaterThan[Equal] / LessThan[Equal]
 *     — a text's length in characters (Unicode code points), an array's number of elements, 0 when null or missing;
 *     as Weaviate, only with `invertedIndexConfig.indexPropertyLength: true`;
 *   - `WithinGeoRange` on a geoCoordinates property: `valueGeoRange: {geoCoordinates: {latitude, longitude},
 *     distance: {max: metres}}`, true when the great-circle distance (haversine, mean Earth radius 6,371,008.8 m) is at
 *     most max; an object without coordinates never matches.
 */

const LENGTH_PATH = /^len\((.+)\)$/;

/** Whether a filter path is `len(prop)`. */
export const isLengthPath = (name: string) => LENGTH_PATH.test(name);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Compiles a property-length filter.
 * @throws CollectionError 422 when the class does not index property lengths, for an unknown property, a missing
 * or non-integer valueInt, or an operator other than the comparisons.
 */
export function compileLengthFilter(name: string, op: string, filter: Record<string, unknown>, def: ClassDef): (o: { properties: Record<string, unknown> }) => boolean {
  const propName = normalizePropertyName(LENGTH_PATH.exec(name)![1]!.trim());
  if (def.invertedIndexConfig?.indexPropertyLength !== true) throw unprocessable("Property length must be indexed to be filterable! add `IndexPropertyLength: true` to the invertedIndexConfig");
  const prop = def.properties.find((p) => p.name === propName);
  if (!prop) throw unprocessable(`no such prop with name '${propName}' found in class '${def.class}' in the schema. Check your schema files for which properties in this class are available`);
  const v = filter.valueInt ?? filter.valueNumber;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw unprocessable(`invalid where filter: ${name} needs valueInt, an integer >= 0`);
  const tests: Record<string, (n: number) => boolean> = {
    Equal: (n) => n === v,
    NotEqual: (n) => n !== v,
    GreaterThan: (n) => n > v,
    GreaterThanEqual: (n) => n >= v,
    LessThan: (n) => n < v,
    LessThanEqual: (n) => n <= v,
  };
  const test = tests[op];
  if (!test) throw unprocessable(`invalid where filter: operator ${op} cannot be used on ${name} (use Equal, NotEqual, GreaterThan[Equal], LessThan[Equal])`);
  return (o) => test(lengthOf(o.properties[prop.name]));
}

function lengthOf(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (Array.isArray(v)) return v.length;
  return [...String(v)].length;
}

const EARTH_RADIUS_M = 6_371_008.8;

/** Great-circle distance in metres between two points given in degrees. */
export function haversineMetres(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/**
 * Compiles `WithinGeoRange` on a property.
 * @throws CollectionError 422 when the property is not geoCoordinates or valueGeoRange is missing or malformed.
 */
export function compileGeoFilter(prop: PropertyDef, filter: Record<string, unknown>): (o: { properties: Record<string, unknown> }) => boolean {
  if (prop.dataType[0] !== "geoCoordinates") throw unprocessable(`invalid where filter: WithinGeoRange needs a geoCoordinates property, '${prop.name}' is ${prop.dataType[0]}`);
  const r = filter.valueGeoRange;
  const c = isObject(r) ? r.geoCoordinates : undefined;
  const d = isObject(r) ? r.distance : undefined;
  const lat = isObject(c) ? c.latitude : undefined;
  const lon = isObject(c) ? c.longitude : undefined;
  const max = isObject(d) ? d.max : undefined;
  if (typeof lat !== "number" || typeof lon !== "number" || typeof max !== "number" || !(max >= 0)) {
    throw unprocessable("invalid where filter: WithinGeoRange needs valueGeoRange: {geoCoordinates: {latitude, longitude}, distance: {max: metres}}");
  }
  return (o) => {
    const v = o.properties[prop.name];
    if (!isObject(v) || typeof v.latitude !== "number" || typeof v.longitude !== "number") return false;
    return haversineMetres(lat, lon, v.latitude, v.longitude) <= max;
  };
}
