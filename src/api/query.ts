import type { z } from "zod";
import { invalidRequest } from "../core/errors.js";

/**
 * Parses query-string parameters with a zod schema.
 * @throws OpenBatchError 400 naming the first bad parameter.
 */
export function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.infer<S> {
  const result = schema.safeParse(query ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.join(".");
  throw invalidRequest(`Invalid query parameter '${param}': ${issue.message}`, param);
}
