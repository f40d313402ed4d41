/**
 * An error of the collections layer with the HTTP status Weaviate answers it with (422 for invalid input, 404 for a
 * missing class or object). The Weaviate dialect renders it as `{"error":[{"message":…}]}`.
 */
export class CollectionError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "CollectionError";
  }
}

/** 422 Unprocessable Entity: the request is well-formed JSON but not valid. */
export const unprocessable = (message: string) => new CollectionError(422, message);

/** A JSON value as Go's `%v` prints it (Weaviate's messages are built with fmt): `1.5`, `1e+06`, `[a b]`, `map[k:v]`. */
export function goValue(v: unknown): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "number") return goFloat(v);
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(goValue).join(" ")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${goValue(x)}`).join(" ")}]`;
  }
  return String(v);
}

/** A JSON value's Go type as `%T` prints it once decoded into `interface{}`. */
export function goType(v: unknown): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "number") return "float64";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "[]interface {}";
  return "map[string]interface {}";
}

/** A float64 as Go's `%v` (`%g`, shortest): exponent form when the decimal exponent is < -4 or >= 6 (`1e+06`, `1.5`). */
function goFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mantissa, expText] = x.toExponential().split("e") as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  return x.toString();
}
