import type { BatchEndpoint } from "./batch.js";

/** The request/response formats OpenBatch speaks and translates between. */
export type WireFormat = "openai" | "anthropic" | "gemini";

/**
 * Every endpoint a request item can target, named in its own format: the OpenAI batch endpoints, Anthropic's
 * Messages API, and Gemini's generateContent / embedContent (the model goes in the URL there, not the body).
 */
export type Endpoint = BatchEndpoint | "/v1/messages" | "gemini:generateContent" | "gemini:embedContent";

/** The format an endpoint's request and response bodies are in. */
export function formatOf(endpoint: Endpoint): WireFormat {
  if (endpoint === "/v1/messages") return "anthropic";
  if (endpoint.startsWith("gemini:")) return "gemini";
  return "openai";
}
