/* The page's client of /dashboard/api and /v1: the key from session storage on every call, a 401 sends the user back
   to the key prompt, and the live stream is read with fetch (EventSource cannot send an Authorization header). */

const KEY = "openbatch.dashboard.key";

export interface Counts { total: number; completed: number; failed: number; pending: number; expired: number; cancelled: number }
export interface Usage { input_tokens: number; cached_tokens: number; output_tokens: number; reasoning_tokens: number }
export interface BatchRow {
  id: string; dialect: string; endpoint: string; model: string | null; provider: string | null; status: string;
  input_file_id: string | null; output_file_id: string | null; error_file_id: string | null;
  metadata: Record<string, string> | null; created_at: number; in_progress_at: number | null; expires_at: number;
  finalizing_at: number | null; completed_at: number | null; failed_at: number | null; expired_at: number | null;
  cancelling_at: number | null; cancelled_at: number | null; name: string | null; completion_window: string;
  errors: { code: string; message: string; line: number | null }[] | null;
  request_counts: Counts; usage: Usage; estimated_cost: { regular: number; batch: number } | null;
  rate: number | null; eta_s: number | null;
}
export interface ProviderPanel {
  name: string; in_flight: number; concurrency: number; max_concurrency: number; rpm: number | null; tpm: number | null;
  requests_last_minute: number; tokens_last_minute: number; throttled_total: number; throttled_recent: number;
  paused_until: number | null; latency_p50_ms: number | null; latency_p95_ms: number | null; calls_recent: number;
}
export type Point = [number, number, number];
export interface Overview {
  now: number; auth: boolean; admin: boolean; tick_ms: number; queue_depth: number;
  by_status: Record<string, number>; by_dialect: Record<string, number>; truncated: boolean;
  throughput: Point[]; providers: ProviderPanel[] | null; vendor_jobs: Record<string, number> | null; collections: number;
}
export interface Tick { point: Point; queue_depth: number; changed: BatchRow[] }

export function getKey(): string | null {
  return sessionStorage.getItem(KEY);
}
export function setKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, key);
  authListeners.forEach((f) => f());
}
const authListeners = new Set<() => void>();
export function onAuthChange(f: () => void): () => void {
  authListeners.add(f);
  return () => authListeners.delete(f);
}

/** An API error with the server's message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code: string | null) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = getKey();
  return key ? { authorization: `Bearer ${key}`, ...extra } : extra;
}

async function answer<T>(res: Response): Promise<T> {
  if (res.ok) return (await res.json()) as T;
  let message = `${res.status} ${res.statusText}`;
  let code: string | null = null;
  try {
    const body = (await res.json()) as { error?: { message?: string; code?: string } };
    if (body.error?.message) message = body.error.message;
    code = body.error?.code ?? null;
  } catch {
    /* not JSON */
  }
  if (res.status === 401) {
    sessionStorage.removeItem(KEY);
    authError = message;
    authListeners.forEach((f) => f());
  }
  throw new ApiError(res.status, message, code);
}

/** The last 401's message, shown on the key prompt. */
export let authError: string | null = null;
export function clearAuthError(): void {
  authError = null;
}

export async function get<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { headers: headers() }));
}
export async function post<T>(path: string, body?: unknown, contentType = "application/json"): Promise<T> {
  const init: RequestInit = { method: "POST", headers: headers(body === undefined ? {} : { "content-type": contentType }) };
  if (body !== undefined) init.body = contentType === "application/json" ? JSON.stringify(body) : (body as BodyInit);
  return answer<T>(await fetch(path, init));
}
export async function postForm<T>(path: string, form: FormData): Promise<T> {
  return answer<T>(await fetch(path, { method: "POST", headers: headers(), body: form }));
}

/** Downloads a file through the Files API (with the key), saving it under its name. */
export async function download(fileId: string, name: string): Promise<void> {
  const res = await fetch(`/v1/files/${encodeURIComponent(fileId)}/content`, { headers: headers() });
  if (!res.ok) await answer(res);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/* ---------------------------------------------------------------- live stream */

type Listener = (t: Tick) => void;
const listeners = new Set<Listener>();
const statusListeners = new Set<(live: boolean) => void>();
let live = false;
let abort: AbortController | null = null;

export function onTick(f: Listener): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}
export function onLive(f: (live: boolean) => void): () => void {
  statusListeners.add(f);
  f(live);
  return () => statusListeners.delete(f);
}
function setLive(v: boolean): void {
  live = v;
  statusListeners.forEach((f) => f(v));
}

/** Opens (or re-opens after a key change) the server-sent-events stream; reconnects with backoff when it drops. */
export function connectStream(): void {
  abort?.abort();
  const ctl = new AbortController();
  abort = ctl;
  let delay = 500;
  const run = async (): Promise<void> => {
    while (!ctl.signal.aborted) {
      try {
        const res = await fetch("/dashboard/api/stream", { headers: headers({ accept: "text/event-stream" }), signal: ctl.signal });
        if (res.status === 401) {
          await answer(res).catch(() => undefined);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`stream ${res.status}`);
        setLive(true);
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let at: number;
          while ((at = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            let event = "message";
            let data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) event = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (event === "tick" && data) {
              const t = JSON.parse(data) as Tick;
              listeners.forEach((f) => f(t));
            }
          }
        }
      } catch {
        /* dropped: retry below */
      }
      setLive(false);
      if (ctl.signal.aborted) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(10_000, delay * 2);
    }
  };
  void run();
}
