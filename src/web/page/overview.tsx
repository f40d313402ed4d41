import { useEffect, useState } from "preact/hooks";
import { get, onTick, type BatchRow, type Overview as OverviewData, type ProviderPanel } from "./api";
import { ThroughputChart } from "./chart";
import { Card, DialectTag, ErrorNote, fmtAgo, fmtInt, fmtMs, fmtRate, link, Progress, Stat, StatusPill } from "./ui";

const STATUS_ORDER = ["created", "validating", "in_progress", "finalizing", "cancelling", "completed", "failed", "expired", "cancelled"];

export function Overview() {
  const [data, setData] = useState<OverviewData | null>(null);
  const [recent, setRecent] = useState<BatchRow[]>([]);
  const [error, setError] = useState<unknown>(null);
  const load = () =>
    Promise.all([get<OverviewData>("/dashboard/api/overview"), get<{ data: BatchRow[] }>("/dashboard/api/batches?limit=8")])
      .then(([o, b]) => {
        setData(o);
        setRecent(b.data);
        setError(null);
      })
      .catch(setError);
  useEffect(() => {
    void load();
    // Panels that the stream does not carry (providers, counts by status) are re-read every few seconds.
    const slow = setInterval(() => void load(), 5000);
    const off = onTick((t) => {
      setData((d) => (d ? { ...d, queue_depth: t.queue_depth, throughput: [...d.throughput.slice(-3599), t.point] } : d));
      if (t.changed.length) {
        setRecent((rows) => {
          const byId = new Map(t.changed.map((b) => [b.id, b]));
          const known = new Set(rows.map((r) => r.id));
          const fresh = t.changed.filter((b) => !known.has(b.id));
          return [...fresh, ...rows.map((r) => byId.get(r.id) ?? r)].slice(0, 8);
        });
      }
    });
    return () => {
      clearInterval(slow);
      off();
    };
  }, []);
  if (!data) return <div class="page"><ErrorNote error={error} />{!error && <div class="loading">Loading…</div>}</div>;
  const last = data.throughput.slice(-Math.max(1, Math.round(60_000 / data.tick_ms)));
  const perMin = last.reduce((s, p) => s + p[1] + p[2], 0);
  const failedMin = last.reduce((s, p) => s + p[2], 0);
  const running = (data.by_status.in_progress ?? 0) + (data.by_status.validating ?? 0) + (data.by_status.finalizing ?? 0) + (data.by_status.cancelling ?? 0);
  const total = Object.values(data.by_status).reduce((s, n) => s + n, 0);
  return (
    <div class="page" data-page="overview">
      <ErrorNote error={error} />
      <div class="stats">
        <Stat label="Queue depth" value={<span data-testid="queue-depth">{fmtInt(data.queue_depth)}</span>} hint="items queued or in flight" />
        <Stat label="Running batches" value={fmtInt(running)} hint={`${fmtInt(total)} batches in all`} />
        <Stat label="Last minute" value={fmtRate(perMin / 60)} hint={`${fmtInt(perMin)} items finished`} tone="ok" />
        <Stat label="Failed, last minute" value={fmtInt(failedMin)} hint="items" tone={failedMin > 0 ? "bad" : ""} />
      </div>
      <div class="grid-2-1">
        <Card title="Throughput" right={<span class="muted">last hour · 10 s means</span>}>
          <ThroughputChart points={data.throughput} tickMs={data.tick_ms} />
        </Card>
        <Card title="Batches by status">
          <div class="status-bar">
            {STATUS_ORDER.filter((s) => data.by_status[s]).map((s) => (
              <div class={`seg seg-${s}`} style={{ flexGrow: data.by_status[s] }} title={`${s}: ${data.by_status[s]}`} />
            ))}
          </div>
          <ul class="status-list">
            {STATUS_ORDER.filter((s) => data.by_status[s]).map((s) => (
              <li>
                <a href={link(`/batches?status=${s}`)}><StatusPill status={s} /></a>
                <span class="num">{fmtInt(data.by_status[s])}</span>
              </li>
            ))}
            {total === 0 && <li class="muted">No batches yet. <a href={link("/new")}>Create one</a>.</li>}
          </ul>
          {Object.keys(data.by_dialect).length > 0 && (
            <div class="dialects">
              {Object.entries(data.by_dialect).map(([d, n]) => (
                <a href={link(`/batches?dialect=${d}`)}><DialectTag dialect={d} /> {fmtInt(n)}</a>
              ))}
            </div>
          )}
        </Card>
      </div>
      <Card title="Providers" right={data.providers && <span class="muted">upstream calls from this server</span>}>
        {data.providers === null ? (
          <p class="muted">Provider panels show every tenant's upstream traffic: they are shown to admin keys (config <code>adminKeys</code>) only.</p>
        ) : data.providers.length === 0 ? (
          <p class="muted">No upstream called yet. Panels appear once a batch runs.</p>
        ) : (
          <div class="providers">{data.providers.map((p) => <ProviderCard p={p} />)}</div>
        )}
        {data.vendor_jobs && Object.values(data.vendor_jobs).some((n) => n > 0) && (
          <div class="vendor-jobs">
            <span class="muted">Vendor (native) jobs:</span>
            {Object.entries(data.vendor_jobs).filter(([, n]) => n > 0).map(([s, n]) => <span class="chip">{s} <b>{fmtInt(n)}</b></span>)}
          </div>
        )}
      </Card>
      <Card title="Recent batches" right={<a href={link("/batches")}>All batches →</a>}>
        <table class="table">
          <tbody>
            {recent.map((b) => (
              <tr data-batch={b.id}>
                <td><a href={link(`/batches/${b.id}`)} class="mono">{b.name ?? b.id}</a><div class="sub">{b.model ?? b.endpoint}</div></td>
                <td><DialectTag dialect={b.dialect} /></td>
                <td><StatusPill status={b.status} /></td>
                <td class="w-progress"><Progress counts={b.request_counts} /><div class="sub">{fmtInt(b.request_counts.completed + b.request_counts.failed)} / {fmtInt(b.request_counts.total)}</div></td>
                <td class="sub">{fmtAgo(b.created_at)}</td>
              </tr>
            ))}
            {recent.length === 0 && <tr><td class="muted">Nothing yet.</td></tr>}
          </tbody>
        </table>
      </Card>
    </div>
  );
}

function Gauge({ label, used, of, unit }: { label: string; used: number; of: number | null; unit?: string }) {
  const pct = of ? Math.min(100, (used / of) * 100) : 0;
  return (
    <div class="gauge">
      <div class="gauge-top"><span>{label}</span><span class="num">{fmtInt(used)}{of !== null ? ` / ${fmtInt(of)}` : ""}{unit ? ` ${unit}` : ""}</span></div>
      <div class="gauge-bar"><div class={pct > 90 ? "hot" : ""} style={{ width: `${of ? pct : 0}%` }} /></div>
    </div>
  );
}

function ProviderCard({ p }: { p: ProviderPanel }) {
  const paused = p.paused_until !== null ? Math.ceil((p.paused_until - Date.now()) / 1000) : 0;
  return (
    <div class="provider" data-provider={p.name}>
      <div class="provider-head">
        <h3>{p.name}</h3>
        {paused > 0 ? <span class="pill pill-cancelling">paused {paused}s (Retry-After)</span> : <span class="pill pill-in_progress">sending</span>}
      </div>
      <Gauge label="In flight" used={p.in_flight} of={p.concurrency} />
      <Gauge label="Requests, last minute" used={p.requests_last_minute} of={p.rpm} unit={p.rpm === null ? "(no rpm known)" : "rpm"} />
      <Gauge label="Tokens, last minute" used={p.tokens_last_minute} of={p.tpm} unit={p.tpm === null ? "(no tpm known)" : "tpm"} />
      <div class="provider-stats">
        <div><span class="muted">p50</span> {fmtMs(p.latency_p50_ms)}</div>
        <div><span class="muted">p95</span> {fmtMs(p.latency_p95_ms)}</div>
        <div class={p.throttled_recent > 0 ? "bad" : ""}><span class="muted">429s (5 min)</span> {fmtInt(p.throttled_recent)}</div>
        <div><span class="muted">window</span> {p.concurrency}/{p.max_concurrency}</div>
      </div>
    </div>
  );
}
