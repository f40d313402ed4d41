import { useEffect, useState } from "preact/hooks";
import { get, onTick, type BatchRow } from "./api";
import { costOf, DialectTag, ErrorNote, fmtAgo, fmtDuration, fmtInt, fmtRate, link, Progress, StatusPill } from "./ui";

const STATUSES = ["", "created", "validating", "in_progress", "finalizing", "cancelling", "completed", "failed", "expired", "cancelled"];
const DIALECTS: [string, string][] = [["", "Any API"], ["openai", "OpenAI"], ["grok", "seed 001"], ["gemini", "Gemini"], ["anthropic", "Anthropic"]];
const FIELDS = ["status", "dialect", "provider", "model", "metadata"] as const;

function matches(b: BatchRow, f: Record<string, string>): boolean {
  if (f.status && b.status !== f.status) return false;
  if (f.dialect && b.dialect !== f.dialect) return false;
  if (f.provider && b.provider !== f.provider) return false;
  if (f.model && !(b.model ?? "").includes(f.model)) return false;
  if (f.metadata) {
    const [k, ...rest] = f.metadata.split("=");
    if (!b.metadata || !(k! in b.metadata)) return false;
    if (rest.length && b.metadata[k!] !== rest.join("=")) return false;
  }
  return true;
}

export function Batches({ query }: { query: URLSearchParams }) {
  const initial = Object.fromEntries(FIELDS.map((k) => [k, query.get(k) ?? ""]));
  const [filter, setFilter] = useState<Record<string, string>>(initial);
  const [rows, setRows] = useState<BatchRow[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const qs = (after?: string) => {
    const p = new URLSearchParams();
    for (const k of FIELDS) if (filter[k]) p.set(k, filter[k]!);
    if (after) p.set("after", after);
    return p.toString();
  };
  useEffect(() => {
    setLoading(true);
    const t = setTimeout(() => {
      get<{ data: BatchRow[]; next: string | null }>(`/dashboard/api/batches?${qs()}`)
        .then((r) => {
          setRows(r.data);
          setNext(r.next);
          setError(null);
        })
        .catch(setError)
        .finally(() => setLoading(false));
      const s = qs();
      history.replaceState(null, "", `#/batches${s ? "?" + s : ""}`);
    }, 200);
    return () => clearTimeout(t);
  }, [JSON.stringify(filter)]);
  useEffect(
    () =>
      onTick((t) => {
        if (!t.changed.length) return;
        setRows((cur) => {
          const byId = new Map(t.changed.map((b) => [b.id, b]));
          const known = new Set(cur.map((r) => r.id));
          const fresh = t.changed.filter((b) => !known.has(b.id) && matches(b, filter)).sort((a, b) => b.created_at - a.created_at);
          return [...fresh, ...cur.map((r) => byId.get(r.id) ?? r)];
        });
      }),
    [JSON.stringify(filter)],
  );
  const more = () =>
    next &&
    get<{ data: BatchRow[]; next: string | null }>(`/dashboard/api/batches?${qs(next)}`)
      .then((r) => {
        setRows((cur) => [...cur, ...r.data]);
        setNext(r.next);
      })
      .catch(setError);
  const set = (k: string) => (e: Event) => setFilter({ ...filter, [k]: (e.target as HTMLInputElement).value });
  return (
    <div class="page" data-page="batches">
      <div class="filters card">
        <label>Status<select name="status" value={filter.status} onChange={set("status")}>{STATUSES.map((s) => <option value={s}>{s ? s.replace("_", " ") : "Any status"}</option>)}</select></label>
        <label>API<select name="dialect" value={filter.dialect} onChange={set("dialect")}>{DIALECTS.map(([v, l]) => <option value={v}>{l}</option>)}</select></label>
        <label>Provider<input name="provider" placeholder="e.g. openai" value={filter.provider} onInput={set("provider")} /></label>
        <label>Model<input name="model" placeholder="contains…" value={filter.model} onInput={set("model")} /></label>
        <label>Metadata<input name="metadata" placeholder="key=value" value={filter.metadata} onInput={set("metadata")} /></label>
        {FIELDS.some((k) => filter[k]) && <button class="btn ghost" onClick={() => setFilter(Object.fromEntries(FIELDS.map((k) => [k, ""])))}>Clear</button>}
      </div>
      <ErrorNote error={error} />
      <div class="card flush">
        <table class="table batches">
          <thead>
            <tr><th>Batch</th><th>API</th><th>Status</th><th class="w-progress">Progress</th><th>Rate</th><th>ETA</th><th>Cost</th><th>Created</th></tr>
          </thead>
          <tbody>
            {rows.map((b) => (
              <tr data-batch={b.id} data-status={b.status}>
                <td>
                  <a class="mono" href={link(`/batches/${b.id}`)}>{b.id}</a>
                  <div class="sub">{b.name ? `${b.name} · ` : ""}{b.model ?? "—"}{b.provider ? ` → ${b.provider}` : ""}</div>
                </td>
                <td><DialectTag dialect={b.dialect} /></td>
                <td><StatusPill status={b.status} /></td>
                <td class="w-progress">
                  <Progress counts={b.request_counts} />
                  <div class="sub counts">{fmtInt(b.request_counts.completed)} ok · {fmtInt(b.request_counts.failed)} failed · {fmtInt(b.request_counts.total)} total</div>
                </td>
                <td class="num">{fmtRate(b.rate)}</td>
                <td class="num">{fmtDuration(b.eta_s)}</td>
                <td class="num">{costOf(b)}</td>
                <td class="sub">{fmtAgo(b.created_at)}</td>
              </tr>
            ))}
            {!loading && rows.length === 0 && <tr><td colSpan={8} class="empty">No batches match. <a href={link("/new")}>Create one</a>.</td></tr>}
          </tbody>
        </table>
        {next && <div class="more"><button class="btn" onClick={more}>Load more</button></div>}
      </div>
    </div>
  );
}
