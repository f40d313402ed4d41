import { connect } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "./support/harness.js";

/**
 * Bodies no SDK would send (malformed JSON, a foreign content-type, too many bytes, a broken multipart form, a URL
 * that does not decode) must be answered by OUR error, in the shape of the dialect whose path was called, with no
 * trace of the framework (`FST_…` codes, Fastify's own messages).
 */

interface RawResponse {
  status: number;
  text: string;
  json: any;
}

/**
 * One HTTP/1.1 request over a plain socket, so the test controls every byte: `announce` sends that content-length
 * while writing only `body` (the server must refuse on the header alone). The server answers and closes or we close
 * once the announced response body has arrived.
 */
function raw(origin: string, method: string, path: string, headers: Record<string, string>, body = "", announce?: number): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = Buffer.alloc(0);
    const finish = () => {
      const text = data.toString("utf8");
      const split = text.indexOf("\r\n\r\n");
      if (split < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      const status = Number(text.slice(9, 12));
      const payload = text.slice(split + 4);
      let json: unknown = null;
      try {
        json = JSON.parse(payload);
      } catch {
        /* not JSON: the assertions say so */
      }
      resolve({ status, text: payload, json });
    };
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const text = data.toString("utf8");
      const split = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, split));
      if (split >= 0 && length && data.length - Buffer.byteLength(text.slice(0, split + 4)) >= Number(length[1])) {
        socket.destroy();
        finish();
      }
    });
    socket.on("end", finish);
    socket.on("error", (err) => (data.length ? finish() : reject(err)));
    const head = [`${method} ${path} HTTP/1.1`, `host: ${hostname}:${port}`, "connection: close"];
    for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
    head.push(`content-length: ${announce ?? Buffer.byteLength(body)}`);
    socket.write(head.join("\r\n") + "\r\n\r\n" + body);
  });
}

type Check = (res: RawResponse, expected: { status: number; code: string; message: string }) => void;

const openAIShape: Check = (res, e) => {
  expect(res.json).toEqual({ error: { message: e.message, type: "invalid_request_error", param: null, code: e.code } });
};
const anthropicShape: Check = (res, e) => {
  expect(res.json).toMatchObject({ type: "error", error: { type: e.status === 413 ? "request_too_large" : "invalid_request_error", message: e.message } });
};
const geminiShape: Check = (res, e) => {
  expect(res.json).toEqual({ error: { code: e.status, message: e.message, status: "INVALID_ARGUMENT" } });
};
const weaviateShape: Check = (res, e) => {
  expect(res.json).toEqual({ error: [{ message: e.message }] });
};

/** A POST route of each dialect that takes a JSON body. */
const DIALECTS: { name: string; path: string; shape: Check; bodyLimit: number }[] = [
  { name: "OpenAI", path: "/v1/batches", shape: openAIShape, bodyLimit: 32 * 1024 * 1024 },
  { name: "seed-001", path: "/v1/batches/batch_none/requests", shape: openAIShape, bodyLimit: 32 * 1024 * 1024 },
  { name: "Anthropic", path: "/v1/messages/batches", shape: anthropicShape, bodyLimit: 32 * 1024 * 1024 },
  { name: "Gemini", path: "/v1beta/models/some-model:batchGenerateContent", shape: geminiShape, bodyLimit: 32 * 1024 * 1024 },
  { name: "Weaviate schema", path: "/v1/schema", shape: weaviateShape, bodyLimit: 32 * 1024 * 1024 },
  { name: "Weaviate batch", path: "/v1/batch/objects", shape: weaviateShape, bodyLimit: 256 * 1024 * 1024 },
  { name: "Weaviate GraphQL", path: "/v1/graphql", shape: weaviateShape, bodyLimit: 32 * 1024 * 1024 },
];

/** Nothing of the framework shows: no FST_ code, none of Fastify's default messages. */
function expectNoFrameworkTrace(res: RawResponse) {
  expect(res.text).not.toMatch(/FST_|content-type is set to|Unsupported Media Type|Request body is too large/);
}

describe("framework errors are ours, in each dialect's shape", () => {
  let server: TestServer;
  let origin: string;

  beforeAll(async () => {
    server = await startServer({});
    origin = server.url.replace(/\/v1$/, "");
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const d of DIALECTS) {
    describe(d.name, () => {
      it("malformed JSON → 400 invalid_json", async () => {
        const res = await raw(origin, "POST", d.path, { "content-type": "application/json" }, "{bad");
        expect(res.status).toBe(400);
        d.shape(res, { status: 400, code: "invalid_json", message: "The request body is not valid JSON." });
        expectNoFrameworkTrace(res);
      });

      it("unsupported content-type → 415 unsupported_media_type", async () => {
        const res = await raw(origin, "POST", d.path, { "content-type": "application/xml" }, "<batch/>");
        expect(res.status).toBe(415);
        d.shape(res, {
          status: 415,
          code: "unsupported_media_type",
          message: "Unsupported content-type: send the body as application/json (uploads: multipart/form-data).",
        });
        expectNoFrameworkTrace(res);
      });

      it("a body over the limit → 413 request_too_large, refused on its content-length", async () => {
        const res = await raw(origin, "POST", d.path, { "content-type": "application/json" }, "{", d.bodyLimit + 1);
        expect(res.status).toBe(413);
        d.shape(res, { status: 413, code: "request_too_large", message: `The request body is larger than the limit of ${d.bodyLimit} bytes.` });
        expectNoFrameworkTrace(res);
      });
    });
  }

  it("a body that grows past the limit while streaming (no content-length) → 413 in OpenAI's shape", async () => {
    const limit = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > limit) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${origin}/v1/batches`, { method: "POST", headers: { "content-type": "application/json" }, body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      error: { message: `The request body is larger than the limit of ${limit} bytes.`, type: "invalid_request_error", param: null, code: "request_too_large" },
    });
    expect(text).not.toContain("FST_");
  });

  it("a malformed multipart upload → 400 invalid_multipart, not a 500", async () => {
    const noBoundary = await raw(origin, "POST", "/v1/files", { "content-type": "multipart/form-data" }, "garbage");
    const cutShort = await raw(
      origin,
      "POST",
      "/v1/files",
      { "content-type": "multipart/form-data; boundary=xx" },
      '--xx\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--xx\r\nContent-Disp',
    );
    for (const res of [noBoundary, cutShort]) {
      expect(res.status).toBe(400);
      expect(res.json).toEqual({ error: { message: "The multipart body is malformed.", type: "invalid_request_error", param: "file", code: "invalid_multipart" } });
    }
  });

  it("a URL that does not percent-decode → 400 invalid_url in the dialect's shape", async () => {
    const openai = await raw(origin, "GET", "/v1/batches/%E0%A4%A", {});
    expect(openai.status).toBe(400);
    expect(openai.json).toEqual({ error: { message: "The request URL is not validly percent-encoded.", type: "invalid_request_error", param: null, code: "invalid_url" } });
    const anthropic = await raw(origin, "GET", "/v1/messages/batches/%E0%A4%A", {});
    expect(anthropic.status).toBe(400);
    expect(anthropic.json).toMatchObject({ type: "error", error: { type: "invalid_request_error", message: "The request URL is not validly percent-encoded." } });
    for (const res of [openai, anthropic]) expectNoFrameworkTrace(res);
  });

  it("the Anthropic SDK reads a framework 4xx as its typed error", async () => {
    // The SDK always sends valid JSON, so an over-limit body is the framework error it can meet: a batch of one
    // request whose text is larger than the 32 MiB body limit.
    const client = new Anthropic({ baseURL: origin, apiKey: "unused", maxRetries: 0 });
    const err = await client.messages.batches
      .create({ requests: [{ custom_id: "big", params: { model: "m", max_tokens: 1, messages: [{ role: "user", content: "x".repeat(32 * 1024 * 1024) }] } }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(413);
    expect((err as any).error).toMatchObject({ type: "error", error: { type: "request_too_large" } });
  });
});
