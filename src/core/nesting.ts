import { invalidRequest } from "./errors.js";

/**
 * The deepest nesting of objects and lists accepted in a request: JSON bodies, JSONL lines and GraphQL queries.
 * Real requests nest a few dozen levels; thousands only come from attacks and overflow recursive code downstream.
 */
export const MAX_NESTING_DEPTH = 256;

/**
 * Whether `text` nests `{`, `[` (and, for GraphQL, `(`) deeper than `max`, brackets inside double-quoted strings
 * (with backslash escapes) not counted. One linear pass, no allocation: cheap enough to run before every parse.
 */
export function nestsDeeperThan(text: string, max: number = MAX_NESTING_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */ || c === 40 /* ( */) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93 || c === 41) depth--;
  }
  return false;
}

/**
 * Refuses text nested deeper than MAX_NESTING_DEPTH. @throws OpenBatchError 400 (code `nesting_too_deep`).
 * @param what names the input in the message, e.g. "The request body".
 */
export function assertNestingDepth(text: string, what: string): void {
  if (nestsDeeperThan(text)) {
    throw invalidRequest(`${what} nests objects or lists more than ${MAX_NESTING_DEPTH} levels deep.`, null, "nesting_too_deep");
  }
}
