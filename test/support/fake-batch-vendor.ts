import type { IncomingMessage, ServerResponse } from "node:http";
import { listenLocal, type LocalHttpServer } from "./local-http.js";

/** One request line of a vendor batch, as uploaded. */
export interface VendorLine {
  custom_id: string;
  url: string;
  body: Record<string, unknown>;
}

/** A batch the fake vendor holds. */
export interface FakeVendorBatch {
  id: string;
  input_file_id: string;
  endpoint: string;
  metadata: Record<string, string> | null;
  status: string;
  created_at: number;
  lines: VendorLine[];
  polls: number;
  output_file_id: string | null;
  error_file_id: string | null;
  errors: { data: { code: string; message: string; line?: number }[] } | null;
  /** The request_counts it reports while it runs (default: none finished). */
  reported?: { completed: number; failed: number };
}

/** The operations a fault can hit. */
export type VendorOp = "upload" | "create" | "list" | "poll" | "download" | "cancel" | "chat";

/** What the fake vendor does with one call: answer, fail with a status, or hold the answer until released. */
export type VendorFault = { kind: "ok" } | { kind: "status"; status: number; retryAfter?: number } | { kind: "hold" } | { kind: "apply-then-hold" } | { kind: "apply-then-status"; status: number };

/**
 * A fake OpenAI Batch API (files, batches, list, cancel, file content) plus /v1/chat/completions, whose behaviour a
 * test scripts: `fault(op, n)` per call (n: 1-based count of that op), `finish(batch)` decides how a batch ends once it
 * has been polled `pollsToEnd` times (default: completed, every line answered with an echo). Records every call.
 */
export class FakeBatchVendor {
  readonly batches = new Map<string, FakeVendorBatch>();
  readonly files = new Map<string, string>();
  readonly calls: { op: VendorOp; path: string }[] = [];
  readonly counts = new Map<VendorOp, number>();
  /** Custom ids answered by /v1/chat/completions (direct fallback), with how often. */
  readonly direct = new Map<string, number>();
  fault: (op: VendorOp, n: number) => VendorFault = () => ({ kind: "ok" });
  pollsToEnd = 1;
  /** Sets a batch's end: status, output lines and error lines (default: completed, all answered). */
  finish: (b: FakeVendorBatch) => { status: string; output: unknown[]; errors: unknown[]; batchErrors?: FakeVendorBatch["errors"] } = (b) => ({
    status: "completed",
    output: b.lines.map((l) => answerLine(l)),
    errors: [],
  });
  /** When set, the first download of an output file writes this many lines and then stalls (a crash while recording). */
  stallDownloadAfter: number | null = null;
  private held: (() => void)[] = [];
  private http: LocalHttpServer | null = null;
  private seq = 0;
  url = "";

  async start(): Promise<this> {
    this.http = await listenLocal((req, res) => void this.handle(req, res).catch((err) => res.writeHead(500).end(String(err))));
    this.url = this.http.origin + "/v1";
    return this;
  }

  async stop(): Promise<void> {
    for (const go of this.held.splice(0)) go();
    await this.http?.stop();
  }

  /** Lets every held call go on. */
  release(): void {
    for (const go of this.held.splice(0)) go();
  }

  count(op: VendorOp): number {
    return this.counts.get(op) ?? 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname.replace(/^\/v1/, "");
    const m = (re: RegExp) => re.exec(path);
    let op: VendorOp;
    let act: () => unknown;
    if (req.method === "POST" && path === "/files") {
      op = "upload";
      act = () => this.upload(req.headers["content-type"] ?? "", raw);
    } else if (req.method === "POST" && path === "/batches") {
      op = "create";
      act = () => this.create(JSON.parse(raw));
    } else if (req.method === "GET" && path === "/batches") {
      op = "list";
      act = () => this.list(url.searchParams.get("after"), Number(url.searchParams.get("limit") ?? 20));
    } else if (req.method === "GET" && m(/^\/batches\/([^/]+)$/)) {
      op = "poll";
      act = () => this.poll(m(/^\/batches\/([^/]+)$/)![1]!);
    } else if (req.method === "POST" && m(/^\/batches\/([^/]+)\/cancel$/)) {
      op = "cancel";
      act = () => this.cancel(m(/^\/batches\/([^/]+)\/cancel$/)![1]!);
    } else if (req.method === "GET" && m(/^\/files\/([^/]+)\/content$/)) {
      op = "download";
      act = () => ({ file: m(/^\/files\/([^/]+)\/content$/)![1]! });
    } else if (req.method === "POST" && path === "/chat/completions") {
      op = "chat";
      act = () => this.chat(JSON.parse(raw));
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `no route ${req.method} ${path}` } }));
      return;
    }
    const n = (this.counts.get(op) ?? 0) + 1;
    this.counts.set(op, n);
    this.calls.push({ op, path });
    const fault = this.fault(op, n);
    if (fault.kind === "status") {
      res.writeHead(fault.status, { "content-type": "application/json", ...(fault.retryAfter !== undefined ? { "retry-after": String(fault.retryAfter) } : {}) });
      res.end(JSON.stringify({ error: { message: `injected ${fault.status} on ${op}`, type: "server_error" } }));
      return;
    }
    if (fault.kind === "hold") await new Promise<void>((go) => this.held.push(go));
    const result = act();
    if (fault.kind === "apply-then-hold") {
      await new Promise<void>((go) => this.held.push(go));
      if (res.destroyed) return;
    }
    if (fault.kind === "apply-then-status") {
      res.writeHead(fault.status, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `injected ${fault.status} after ${op}` } }));
      return;
    }
    if (op === "download") return this.download((result as { file: string }).file, n, res);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result));
  }

  private upload(contentType: string, raw: string) {
    const boundary = /boundary=([^;]+)/.exec(contentType)?.[1];
    if (!boundary) throw new Error("no multipart boundary");
    const parts = raw.split(`--${boundary}`);
    const file = parts.find((p) => p.includes('name="file"'));
    if (!file) throw new Error("no file part");
    const content = file.slice(file.indexOf("\r\n\r\n") + 4).replace(/\r\n$/, "");
    const id = `file-${++this.seq}`;
    this.files.set(id, content);
    return { id, object: "file", bytes: content.length, purpose: "batch", filename: "input.jsonl", created_at: Math.floor(Date.now() / 1000), status: "processed" };
  }

  private create(body: { input_file_id: string; endpoint: string; metadata?: Record<string, string> }) {
    const content = this.files.get(body.input_file_id);
    if (content === undefined) throw new Error(`no file ${body.input_file_id}`);
    const lines = content.split("\n").filter(Boolean).map((l) => JSON.parse(l) as VendorLine);
    const id = `batch_fake_${++this.seq}`;
    const b: FakeVendorBatch = {
      id,
      input_file_id: body.input_file_id,
      endpoint: body.endpoint,
      metadata: body.metadata ?? null,
      status: "in_progress",
      created_at: Math.floor(Date.now() / 1000),
      lines,
      polls: 0,
      output_file_id: null,
      error_file_id: null,
      errors: null,
    };
    this.batches.set(id, b);
    return render(b);
  }

  private list(after: string | null, limit: number) {
    const all = [...this.batches.values()].reverse();
    const start = after ? all.findIndex((b) => b.id === after) + 1 : 0;
    const page = all.slice(start, start + limit);
    return { object: "list", data: page.map(render), has_more: start + limit < all.length, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null };
  }

  private poll(id: string) {
    const b = this.batches.get(id);
    if (!b) throw new Error(`no batch ${id}`);
    b.polls++;
    if ((b.status === "in_progress" && b.polls >= this.pollsToEnd) || b.status === "cancelling") this.end(b, b.status === "cancelling" ? "cancelled" : null);
    return render(b);
  }

  private end(b: FakeVendorBatch, forced: string | null) {
    const f = forced
      ? { status: forced, output: [], errors: b.lines.map((l) => ({ id: "x", custom_id: l.custom_id, response: null, error: { code: "batch_cancelled", message: "cancelled" } })) }
      : this.finish(b);
    b.status = f.status;
    b.errors = f.batchErrors ?? null;
    if (f.output.length) b.output_file_id = this.store(f.output);
    if (f.errors.length) b.error_file_id = this.store(f.errors);
  }

  private store(lines: unknown[]): string {
    const id = `file-out-${++this.seq}`;
    this.files.set(id, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    return id;
  }

  private cancel(id: string) {
    const b = this.batches.get(id);
    if (!b) throw new Error(`no batch ${id}`);
    if (b.status === "in_progress") b.status = "cancelling";
    return render(b);
  }

  private async download(id: string, n: number, res: ServerResponse) {
    const content = this.files.get(id) ?? "";
    res.writeHead(200, { "content-type": "application/octet-stream" });
    if (this.stallDownloadAfter !== null && n === 1) {
      const lines = content.split("\n").filter(Boolean);
      res.write(lines.slice(0, this.stallDownloadAfter).join("\n") + "\n");
      await new Promise<void>((go) => this.held.push(go));
      if (!res.destroyed) res.end(lines.slice(this.stallDownloadAfter).join("\n") + "\n");
      return;
    }
    res.end(content);
  }

  private chat(body: { messages: { content: string }[] }) {
    const key = body.messages.at(-1)!.content;
    this.direct.set(key, (this.direct.get(key) ?? 0) + 1);
    return { id: "chatcmpl-direct", object: "chat.completion", created: 0, model: "m", choices: [{ index: 0, message: { role: "assistant", content: "direct: " + key }, finish_reason: "stop" }], usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 } };
  }
}

/** An OpenAI Batch output line answering `l` with "vendor: <last user message>". */
export function answerLine(l: VendorLine, status = 200) {
  const key = (l.body.messages as { content: string }[] | undefined)?.at(-1)?.content ?? "";
  return {
    id: `batch_req_${l.custom_id}`,
    custom_id: l.custom_id,
    response: {
      status_code: status,
      request_id: `req_${l.custom_id}`,
      body:
        status === 200
          ? { id: "chatcmpl-v", object: "chat.completion", created: 0, model: "m", choices: [{ index: 0, message: { role: "assistant", content: "vendor: " + key }, finish_reason: "stop" }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }
          : { error: { message: "vendor says no", type: "invalid_request_error" } },
    },
    error: null,
  };
}

function render(b: FakeVendorBatch) {
  return {
    id: b.id,
    object: "batch",
    endpoint: b.endpoint,
    input_file_id: b.input_file_id,
    completion_window: "24h",
    status: b.status,
    output_file_id: b.output_file_id,
    error_file_id: b.error_file_id,
    created_at: b.created_at,
    metadata: b.metadata,
    errors: b.errors,
    request_counts: { total: b.lines.length, completed: b.reported?.completed ?? 0, failed: b.reported?.failed ?? 0 },
  };
}
