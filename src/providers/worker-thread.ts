import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * Starts a worker thread from a module beside the caller, given as the compiled name (`new URL("./x.js",
 * import.meta.url)`). From `dist/` that `.js` file exists and runs as is. From `src/` (tsx, vitest) only `x.ts` exists
 * and Node cannot run TypeScript, so the worker first registers tsx's loader (a dev dependency) and then imports it;
 * tsx's `--import` flag is not honoured in worker threads on Node 20, hence the registration in code.
 * @throws Error when neither file exists, or the `.ts` file exists but tsx is not installed.
 */
export function startModuleWorker(jsUrl: URL, workerData?: unknown): Worker {
  if (existsSync(fileURLToPath(jsUrl))) return new Worker(jsUrl, { workerData });
  const tsUrl = new URL(jsUrl.href.replace(/\.js$/, ".ts"));
  if (!existsSync(fileURLToPath(tsUrl))) throw new Error(`worker module ${fileURLToPath(jsUrl)} not found (run npm run build)`);
  const tsxApi = resolveTsxApi();
  if (!tsxApi) throw new Error(`worker module ${fileURLToPath(tsUrl)} is TypeScript and tsx is not installed to run it (run npm run build)`);
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(tsUrl.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** URL of tsx's ESM `register` API, or null without tsx. */
function resolveTsxApi(): string | null {
  try {
    // Node's own resolution picks the "import" condition; test runners that transform modules may lack
    // import.meta.resolve, and require.resolve would pick the CommonJS build, so the fallback names the file.
    if (typeof import.meta.resolve === "function") return import.meta.resolve("tsx/esm/api");
  } catch {
    // fall through
  }
  try {
    const pkg = createRequire(import.meta.url).resolve("tsx/package.json");
    const api = join(dirname(pkg), "dist/esm/api/index.mjs");
    return existsSync(api) ? pathToFileURL(api).href : null;
  } catch {
    return null;
  }
}

/** A reply from a worker to the request `id`: its result, or the message of the error it threw. */
export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/**
 * Request/reply over one worker thread: `call` posts `{id, op, ...args}` and resolves with the worker's reply to `id`.
 * The thread keeps the process alive only while a call is in flight (an idle worker never holds a CLI open). When the
 * thread dies, every call in flight rejects and the next call starts a new thread (`onRestart` tells the owner, whose
 * state in the old thread is gone).
 */
export class WorkerChannel {
  private worker: Worker | null = null;
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(
    private readonly start: () => Worker,
    private readonly onRestart: () => void = () => {},
  ) {}

  /** Sends one request. `transfer` lists buffers moved (not copied) to the thread. @throws the worker's error, as an Error. */
  call<T>(op: string, args: Record<string, unknown> = {}, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new Error("the worker thread is closed"));
    const worker = this.ensure();
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = this.start();
    worker.unref();
    worker.on("message", (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) p.resolve(reply.value);
      else p.reject(new Error(reply.error));
    });
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      if (!this.closed) this.onRestart();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the worker thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  /** Ends the thread; calls in flight reject. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    for (const p of this.pending.values()) p.reject(new Error("the worker thread is closed"));
    this.pending.clear();
    await worker?.terminate();
  }
}

/**
 * The worker side: answers each `{id, op, ...args}` with `handlers[op](args)` (awaited), posting back the value and
 * the buffers `transferOf(value)` names. A handler's exception becomes an error reply, never a dead thread.
 */
export function serveWorker(
  port: { on(event: "message", fn: (msg: { id: number; op: string } & Record<string, unknown>) => void): void; postMessage(msg: WorkerReply, transfer?: ArrayBuffer[]): void },
  handlers: Record<string, (args: Record<string, unknown>) => unknown>,
  transferOf: (value: unknown) => ArrayBuffer[] = () => [],
): void {
  // One request at a time, in arrival order: the order callers rely on (a search sent after an insert sees it).
  let chain: Promise<void> = Promise.resolve();
  port.on("message", (msg) => {
    chain = chain.then(async () => {
      const handler = handlers[msg.op];
      try {
        if (!handler) throw new Error(`unknown worker op ${msg.op}`);
        const value = await handler(msg);
        port.postMessage({ id: msg.id, ok: true, value }, transferOf(value));
      } catch (err) {
        port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
      }
    });
  });
}
