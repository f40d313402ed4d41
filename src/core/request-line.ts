import { MAX_NESTING_DEPTH, nestsDeeperThan } from "./nesting.js";
import type { BatchEndpoint, BatchValidationError } from "./batch.js";

/** A request line that passed validation (OpenAI Batch input line). */
export interface ParsedRequestLine {
  line: number;
  custom_id: string;
  model: string | null;
  /** The `body` object re-serialised as JSON text. */
  body: string;
}

/**
 * Validates the lines of one OpenAI Batch input file, one at a time, keeping only what it must remember
 * (the custom_ids seen and the first model) so a 200 MB file is checked in flat memory.
 * Follows the OpenAI Batch input line: `{"custom_id","method":"POST","url":<endpoint>,"body":{…,"model"}}`.
 */
export class RequestLineValidator {
  private readonly seen = new Set<string>();
  private model: string | null = null;
  private modelLine = 0;
  /** Non-blank lines seen so far. */
  count = 0;

  constructor(
    private readonly endpoint: BatchEndpoint,
    private readonly maxLines: number,
  ) {}

  /** The single model every line names (null when no line names one). */
  get batchModel(): string | null {
    return this.model;
  }

  /**
   * Checks one line. Blank lines are skipped (returns null).
   * @param text the line without its newline; @param line its 1-based number.
   * @returns the parsed line, a validation error with `line`, or null for a blank line.
   */
  check(text: string, line: number): ParsedRequestLine | BatchValidationError | null {
    // A byte-order mark before the first line (Windows editors write one) is not part of the JSON, as OpenAI treats it.
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === "") return null;
    this.count++;
    if (this.count > this.maxLines) {
      return fail("too_many_tasks", `The input file has more than the limit of ${this.maxLines} requests.`, null, line);
    }
    if (nestsDeeperThan(text)) {
      return fail("invalid_json_line", `This line nests objects or lists more than ${MAX_NESTING_DEPTH} levels deep.`, null, line);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return fail("invalid_json_line", "This line is not parseable as valid JSON.", null, line);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return fail("invalid_json_line", "Each line must be a JSON object.", null, line);
    }
    const obj = value as Record<string, unknown>;
    const customId = obj.custom_id;
    if (typeof customId !== "string" || customId.length === 0) {
      return fail("missing_required_parameter", "Missing required parameter: 'custom_id' (a non-empty string).", "custom_id", line);
    }
    if (customId.length > 512) {
      return fail("invalid_value", "custom_id is longer than 512 characters.", "custom_id", line);
    }
    if (obj.method !== "POST") {
      return fail("invalid_value", `Invalid method ${JSON.stringify(obj.method ?? null)}: only "POST" is supported.`, "method", line);
    }
    if (obj.url !== this.endpoint) {
      return fail(
        "mismatched_url",
        `The url ${JSON.stringify(obj.url ?? null)} does not match the batch endpoint "${this.endpoint}".`,
        "url",
        line,
      );
    }
    const body = obj.body;
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return fail("missing_required_parameter", "Missing required parameter: 'body' (a JSON object).", "body", line);
    }
    const model = (body as Record<string, unknown>).model;
    if (model !== undefined && typeof model !== "string") {
      return fail("invalid_value", "body.model must be a string.", "body.model", line);
    }
    if ((body as Record<string, unknown>).stream === true) {
      return fail("invalid_value", "body.stream: streaming is not supported in a batch; each result is written whole to the output file.", "body.stream", line);
    }
    if (typeof model === "string") {
      if (this.model === null) {
        this.model = model;
        this.modelLine = line;
      } else if (model !== this.model) {
        return fail(
          "mismatched_model",
          `Each batch must contain requests for a single model: line ${line} uses "${model}", line ${this.modelLine} uses "${this.model}".`,
          "body.model",
          line,
        );
      }
    }
    if (this.seen.has(customId)) {
      return fail("duplicate_custom_id", `The custom_id "${customId}" is used more than once in this file.`, "custom_id", line);
    }
    this.seen.add(customId);
    return { line, custom_id: customId, model: typeof model === "string" ? model : null, body: JSON.stringify(body) };
  }
}

function fail(code: string, message: string, param: string | null, line: number): BatchValidationError {
  return { code, message, param, line };
}

/** True for a validation error (as opposed to a parsed line). */
export function isValidationError(x: ParsedRequestLine | BatchValidationError): x is BatchValidationError {
  return "code" in x;
}
