import type { ComponentChildren } from "preact";
import type { BatchRow, Counts } from "./api";

export const TERMINAL = ["completed", "failed", "expired", "cancelled"];

export function fmtInt(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : Math.round(n).toLocaleString("en-US");
}
export function fmtRate(r: number | null): string {
  if (r === null) return "—";
  return r >= 100 ? `${fmtInt(r)}/s` : r >= 1 ? `${r.toFixed(1)}/s` : r > 0 ? `${(r * 60).toFixed(1)}/min` : "0/s";
}
export function fmtDuration(s: number | null): string {
  if (s === null || !isFinite(s)) return "—";
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.round((s % 86400) / 3600)}h`;
}
export function fmtUsd(x: number | null | undefined): string {
  if (x === null || x === undefined) return "—";
  return x === 0 ? "$0" : x < 0.01 ? `$${x.toFixed(4)}` : `$${x.toFixed(2)}`;
}
export function fmtTime(ms: number | null): string {
  if (ms === null) return "—";
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString("en-GB") : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" });
}
export function fmtAgo(ms: number): string {
  const s = (Date.now() - ms) / 1000;
  return s < 5 ? "just now" : `${fmtDuration(s)} ago`;
}
export function fmtMs(ms: number | null): string {
  if (ms === null) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function StatusPill({ status }: { status: string }) {
  return <span class={`pill pill-${status}`} data-status={status}>{status.replace("_", " ")}</span>;
}

export function DialectTag({ dialect }: { dialect: string }) {
  const label: Record<string, string> = { openai: "OpenAI", anthropic: "Anthropic", gemini: "Gemini", grok: "seed 001", weaviate: "Weaviate" };
  return <span class={`tag tag-${dialect}`}>{label[dialect] ?? dialect}</span>;
}

/** A progress bar: succeeded, failed (with expired and cancelled) and pending shares of the total. */
export function Progress({ counts, big }: { counts: Counts; big?: boolean }) {
  const t = Math.max(1, counts.total);
  const done = (counts.completed / t) * 100;
  const bad = ((counts.failed + counts.expired + counts.cancelled) / t) * 100;
  const pct = Math.floor(((counts.total - counts.pending) / t) * 100);
  return (
    <div class={big ? "progress big" : "progress"} role="progressbar" aria-valuenow={pct} aria-valuemin={0} aria-valuemax={100} title={`${fmtInt(counts.completed)} succeeded, ${fmtInt(counts.failed)} failed, ${fmtInt(counts.pending)} pending`}>
      <div class="bar-ok" style={{ width: `${done}%` }} />
      <div class="bar-bad" style={{ width: `${bad}%` }} />
    </div>
  );
}

export function Card({ title, children, right, class: cls }: { title?: ComponentChildren; children: ComponentChildren; right?: ComponentChildren; class?: string }) {
  return (
    <section class={`card ${cls ?? ""}`}>
      {title !== undefined && (
        <header class="card-head">
          <h2>{title}</h2>
          {right}
        </header>
      )}
      {children}
    </section>
  );
}

export function Stat({ label, value, hint, tone }: { label: string; value: ComponentChildren; hint?: ComponentChildren; tone?: string }) {
  return (
    <div class={`stat ${tone ?? ""}`}>
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {hint !== undefined && <div class="stat-hint">{hint}</div>}
    </div>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return <div class="note note-error" role="alert">{error instanceof Error ? error.message : String(error)}</div>;
}

export function Json({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <pre class="json empty">—</pre>;
  return <pre class="json">{typeof value === "string" ? value : JSON.stringify(value, null, 2)}</pre>;
}

export function costOf(b: BatchRow): string {
  return b.estimated_cost ? fmtUsd(b.estimated_cost.batch) : "—";
}

export function link(path: string): string {
  return `#${path}`;
}
