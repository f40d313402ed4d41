import { useEffect, useState } from "preact/hooks";
import { download, get, onTick, post, type BatchRow } from "./api";
import { Card, DialectTag, ErrorNote, fmtDuration, fmtInt, fmtRate, fmtTime, fmtUsd, Json, link, Progress, Stat, StatusPill, TERMINAL } from "./ui";

interface Detail { batch: BatchRow; timeline: { status: string; at: number }[] }
interface Item { id: string; line: number; custom_id: string; state: string; status_code: number | null; request: unknown; response: unknown; error: { code: string | null; message: string | null } | null }
interface ErrorGroup { key: string; code: string | null; status_code: number | null; state: string; count: number; samples: { custom_id: string; message: string }[] }

export function BatchPage({ id }: { id: string }) {
  const [detail, setDetail] = useState<Detail | null>(null);
  const [groups, setGroups] = useState<ErrorGroup[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState("");
  const load = () =>
    get<Detail>(`/dashboard/api/batches/${encodeURIComponent(id)}`)
      .then((d) => {
        setDetail(d);
        setError(null);
        return d;
      })
      .catch((e) => setError(e));
  const loadGroups = () => get<{ groups: ErrorGroup[] }>(`/dashboard/api/batches/${encodeURIComponent(id)}/errors`).then((g) => setGroups(g.groups)).catch(() => undefined);
  useEffect(() => {
    void load();
    void loadGroups();
    let last = "";
    return onTick((t) => {
      const b = t.changed.find((x) => x.id === id);
      if (!b) return;
      setDetail((d) => (d ? { ...d, batch: b } : d));
      // Timeline and error groups change with the counts: read them again (at most once per tick).
      const sig = `${b.status}:${b.request_counts.failed + b.request_counts.expired + b.request_counts.cancelled}`;
      if (sig !== last) {
        last = sig;
        void load();
        void loadGroups();
      }
    });
  }, [id]);
  if (!detail) return <div class="page"><ErrorNote error={error} />{!error && <div class="loading">Loading…</div>}</div>;
  const b = detail.batch;
  const c = b.request_counts;
  const act = (what: "cancel" | "retry") => async () => {
    setBusy(what);
    try {
      const r = await post<{ batch: BatchRow }>(`/dashboard/api/batches/${encodeURIComponent(id)}/${what}`);
      if (what === "retry") location.hash = `#/batches/${r.batch.id}`;
      else setDetail({ ...detail, batch: r.batch });
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy("");
    }
  };
  const ended = TERMINAL.includes(b.status);
  const failedish = c.failed + c.expired + c.cancelled;
  return (
    <div class="page" data-page="batch" data-batch={b.id}>
      <div class="crumbs"><a href={link("/batches")}>Batches</a> / <span class="mono">{b.id}</span></div>
      <div class="batch-head card">
        <div>
          <h1>{b.name ?? b.id} <StatusPill status={b.status} /></h1>
          <div class="sub"><DialectTag dialect={b.dialect} /> {b.endpoint} · {b.model ?? "no model"}{b.provider ? ` → ${b.provider}` : ""} · window {b.completion_window}</div>
          {b.metadata && <div class="meta">{Object.entries(b.metadata).map(([k, v]) => <span class="chip">{k}: <b>{v}</b></span>)}</div>}
        </div>
        <div class="actions">
          {!ended && <button class="btn danger" disabled={busy !== "" || b.status === "cancelling"} onClick={act("cancel")}>{busy === "cancel" ? "Cancelling…" : "Cancel batch"}</button>}
          {ended && failedish > 0 && <button class="btn primary" disabled={busy !== ""} onClick={act("retry")}>{busy === "retry" ? "Retrying…" : `Retry ${fmtInt(failedish)} failed`}</button>}
          {b.input_file_id && <button class="btn" onClick={() => download(b.input_file_id!, `${b.id}_input.jsonl`).catch(setError)}>Input</button>}
          {b.output_file_id && <button class="btn" onClick={() => download(b.output_file_id!, `${b.id}_output.jsonl`).catch(setError)}>Output</button>}
          {b.error_file_id && <button class="btn" onClick={() => download(b.error_file_id!, `${b.id}_errors.jsonl`).catch(setError)}>Errors</button>}
        </div>
      </div>
      <ErrorNote error={error} />
      <Card>
        <Progress counts={c} big />
        <div class="stats inline">
          <Stat label="Succeeded" value={<span data-testid="count-completed">{fmtInt(c.completed)}</span>} tone="ok" />
          <Stat label="Failed" value={<span data-testid="count-failed">{fmtInt(c.failed)}</span>} tone={c.failed ? "bad" : ""} />
          <Stat label="Pending" value={fmtInt(c.pending)} />
          <Stat label="Expired / cancelled" value={`${fmtInt(c.expired)} / ${fmtInt(c.cancelled)}`} />
          <Stat label="Rate" value={fmtRate(b.rate)} hint={b.eta_s !== null ? `ETA ${fmtDuration(b.eta_s)}` : undefined} />
          <Stat label="Cost (batch price)" value={b.estimated_cost ? fmtUsd(b.estimated_cost.batch) : "—"} hint={b.estimated_cost ? `${fmtUsd(b.estimated_cost.regular)} at regular price` : "no price configured"} />
        </div>
      </Card>
      <div class="grid-1-1">
        <Card title="Timeline">
          <ol class="timeline">
            {detail.timeline.map((e) => <li class={`tl-${e.status}`}><StatusPill status={e.status} /><span>{fmtTime(e.at)}</span></li>)}
            {!ended && <li class="tl-deadline"><span class="muted">expires</span><span>{fmtTime(b.expires_at)}</span></li>}
          </ol>
          {b.errors && b.errors.length > 0 && (
            <div class="validation">
              <h3>Validation errors</h3>
              <ul>{b.errors.map((e) => <li><span class="mono">{e.line !== null ? `line ${e.line}` : "file"}</span> <b>{e.code}</b> {e.message}</li>)}</ul>
            </div>
          )}
        </Card>
        <Card title="Usage">
          <dl class="kv">
            <dt>Input tokens</dt><dd>{fmtInt(b.usage.input_tokens)}</dd>
            <dt>Cached tokens</dt><dd>{fmtInt(b.usage.cached_tokens)}</dd>
            <dt>Output tokens</dt><dd>{fmtInt(b.usage.output_tokens)}</dd>
            <dt>Reasoning tokens</dt><dd>{fmtInt(b.usage.reasoning_tokens)}</dd>
            <dt>Regular price</dt><dd>{fmtUsd(b.estimated_cost?.regular)}</dd>
            <dt>Batch price</dt><dd>{fmtUsd(b.estimated_cost?.batch)}</dd>
          </dl>
        </Card>
      </div>
      <Card title="Errors by cause" right={groups && groups.length > 0 ? <span class="muted">{fmtInt(groups.reduce((s, g) => s + g.count, 0))} items</span> : undefined}>
        {groups === null ? <div class="loading">Loading…</div> : groups.length === 0 ? <p class="muted">No failed items{ended ? "" : " so far"}.</p> : (
          <table class="table errors">
            <thead><tr><th>Cause</th><th>Items</th><th>Samples</th></tr></thead>
            <tbody>
              {groups.map((g) => (
                <tr data-error-group={g.key}>
                  <td><b class="mono">{g.code ?? `HTTP ${g.status_code}`}</b>{g.code && g.status_code !== null && <div class="sub">HTTP {g.status_code}</div>}<div class="sub">{g.state}</div></td>
                  <td class="num">{fmtInt(g.count)}</td>
                  <td>{g.samples.map((s) => <div class="sample"><a class="mono" href={link(`/batches/${b.id}?custom_id=${encodeURIComponent(s.custom_id)}`)}>{s.custom_id}</a> {s.message}</div>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      <ItemSearch batchId={b.id} version={c.total - c.pending} />
    </div>
  );
}

function ItemSearch({ batchId, version }: { batchId: string; version: number }) {
  const initial = new URLSearchParams(location.hash.split("?")[1] ?? "").get("custom_id") ?? "";
  const [q, setQ] = useState(initial);
  const [state, setState] = useState("");
  const [items, setItems] = useState<Item[]>([]);
  const [truncated, setTruncated] = useState(false);
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const t = setTimeout(() => {
      const p = new URLSearchParams({ custom_id: q, limit: "20" });
      if (state) p.set("state", state);
      get<{ data: Item[]; truncated: boolean }>(`/dashboard/api/batches/${encodeURIComponent(batchId)}/items?${p}`)
        .then((r) => {
          setItems(r.data);
          setTruncated(r.truncated);
          setError(null);
          if (r.data.length === 1) setOpen(r.data[0]!.id);
        })
        .catch(setError);
    }, 250);
    return () => clearTimeout(t);
  }, [q, state, batchId, version]);
  return (
    <Card title="Items" right={<span class="muted">search by custom_id; click a row for request and answer</span>}>
      <div class="filters">
        <label class="grow">custom_id<input name="custom_id" type="search" placeholder="contains…" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} /></label>
        <label>State<select name="state" value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
          {["", "queued", "in_flight", "succeeded", "failed", "expired", "cancelled"].map((s) => <option value={s}>{s || "Any state"}</option>)}
        </select></label>
      </div>
      <ErrorNote error={error} />
      <div class="items">
        {items.map((it) => (
          <div class={`item ${open === it.id ? "open" : ""}`} data-custom-id={it.custom_id}>
            <button class="item-row" onClick={() => setOpen(open === it.id ? null : it.id)}>
              <span class="mono">{it.custom_id}</span>
              <span class="sub">line {it.line}</span>
              <span class={`state state-${it.state}`}>{it.state}{it.status_code !== null ? ` · HTTP ${it.status_code}` : ""}</span>
            </button>
            {open === it.id && (
              <div class="side-by-side">
                <div><h4>Request</h4><Json value={it.request} /></div>
                <div>
                  <h4>{it.error && !it.response ? "Error" : "Response"}</h4>
                  {it.error && <div class="note note-error"><b>{it.error.code}</b> {it.error.message}</div>}
                  {(it.response !== null || !it.error) && <Json value={it.response} />}
                </div>
              </div>
            )}
          </div>
        ))}
        {items.length === 0 && <p class="muted">No items match.</p>}
        {truncated && <p class="muted">More match: refine the search.</p>}
      </div>
    </Card>
  );
}
