import contentDisposition from "content-disposition";
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { invalidRequest } from "../../core/errors.js";
import type { Engine } from "../../engine/engine.js";
import type { StagedUpload } from "../../engine/files.js";
import { translateMultipartError } from "../framework-errors.js";
import { parseQuery } from "../query.js";
import { renderFile, renderList } from "./render.js";

const listQuery = z.object({
  purpose: z.string().optional(),
  order: z.enum(["asc", "desc"]).default("desc"),
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
});

/** OpenAI Files API: `POST/GET /v1/files`, `GET/DELETE /v1/files/{id}`, `GET /v1/files/{id}/content`. */
export const openAIFilesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  app.post("/v1/files", async (req, reply) => {
    if (!req.isMultipart()) throw invalidRequest("Upload files as multipart/form-data with fields 'file' and 'purpose'.", "file");
    const fields: Record<string, string> = {};
    let staged: StagedUpload | null = null;
    let filename = "upload.jsonl";
    try {
      for await (const part of req.parts()) {
        if (part.type === "file") {
          if (part.fieldname !== "file" || staged) {
            part.file.resume();
            continue;
          }
          filename = part.filename || filename;
          staged = await engine.files.stageUpload(part.file);
        } else {
          fields[part.fieldname] = String(part.value);
        }
      }
    } catch (err) {
      if (staged) await engine.files.discardUpload(staged);
      // The rest of a refused body is never read, so this connection cannot carry another request.
      reply.header("connection", "close");
      throw translateMultipartError(err);
    }
    if (!staged) throw invalidRequest("Missing required parameter: 'file'.", "file");
    // The SDKs send `expires_after` as form fields `expires_after[anchor]` and `expires_after[seconds]`.
    const anchor = fields["expires_after[anchor]"];
    const seconds = fields["expires_after[seconds]"];
    const expiresAfter = anchor === undefined && seconds === undefined ? undefined : { anchor, seconds };
    const file = await engine.files.commitUpload(req.caller, staged, { filename, purpose: fields.purpose, expiresAfter });
    return reply.send(renderFile(file));
  });

  app.get("/v1/files", async (req) => {
    const q = parseQuery(listQuery, req.query);
    const page = await engine.files.list(req.caller, q);
    return renderList(page.data.map(renderFile), page.has_more);
  });

  app.get<{ Params: { id: string } }>("/v1/files/:id", async (req) => renderFile(await engine.files.get(req.caller, req.params.id)));

  app.get<{ Params: { id: string } }>("/v1/files/:id/content", async (req, reply) => {
    const { file, stream } = await engine.files.content(req.caller, req.params.id);
    return reply
      .header("content-type", "application/octet-stream")
      .header("content-length", file.bytes)
      // RFC 6266: an ASCII `filename` plus `filename*=UTF-8''…` for any other name (a raw 文件.jsonl is not a legal header).
      .header("content-disposition", contentDisposition(file.filename))
      .send(stream);
  });

  app.delete<{ Params: { id: string } }>("/v1/files/:id", async (req) => {
    await engine.files.delete(req.caller, req.params.id);
    return { id: req.params.id, object: "file", deleted: true };
  });
};
