import { useEffect, useState } from "preact/hooks";
import { get, post } from "./api";
import { Card, ErrorNote, fmtInt, link } from "./ui";

interface Row { class: string; description: string | null; vectorizer: string; model: string | null; distance: string; properties: number; objects: number; vectors: number }
interface Prop { name: string; dataType: string[]; description?: string }
interface ClassDef { class: string; description?: string; vectorizer: string; vectorIndexType: string; vectorIndexConfig: Record<string, unknown>; properties: Prop[] }
interface Obj { id: string; properties: Record<string, unknown>; distance?: number | null; certainty?: number | null }

export function Collections() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => void get<{ data: Row[] }>("/dashboard/api/collections").then((r) => setRows(r.data)).catch(setError), []);
  return (
    <div class="page" data-page="collections">
      <ErrorNote error={error} />
      <Card title="Collections" class="flush" right={<span class="muted">Weaviate-style, at /v1/schema</span>}>
        <table class="table">
          <thead><tr><th>Collection</th><th>Vectorizer</th><th>Objects</th><th>Vectors</th><th>Properties</th><th>Distance</th></tr></thead>
          <tbody>
            {(rows ?? []).map((c) => (
              <tr data-collection={c.class}>
                <td><a href={link(`/collections/${c.class}`)}><b>{c.class}</b></a>{c.description && <div class="sub">{c.description}</div>}</td>
                <td>{c.vectorizer}{c.model && <div class="sub mono">{c.model}</div>}</td>
                <td class="num">{fmtInt(c.objects)}</td>
                <td class="num">{fmtInt(c.vectors)}</td>
                <td class="num">{c.properties}</td>
                <td>{c.distance}</td>
              </tr>
            ))}
            {rows?.length === 0 && <tr><td colSpan={6} class="empty">No collections yet. Import objects through <code>/v1/batch/objects</code> or a Weaviate client.</td></tr>}
          </tbody>
        </table>
      </Card>
    </div>
  );
}

export function CollectionPage({ name }: { name: string }) {
  const [def, setDef] = useState<ClassDef | null>(null);
  const [objects, setObjects] = useState<Obj[]>([]);
  const [total, setTotal] = useState(0);
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [where, setWhere] = useState("");
  const [page, setPage] = useState(0);
  const [text, setText] = useState("");
  const [results, setResults] = useState<Obj[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const enc = encodeURIComponent(name);
  useEffect(() => void get<ClassDef>(`/dashboard/api/collections/${enc}`).then(setDef).catch(setError), [name]);
  const loadPage = (n: number) => {
    const p = new URLSearchParams({ limit: "25" });
    if (where.trim()) {
      p.set("where", where);
      p.set("offset", String(n * 25));
    } else if (cursors[n]) p.set("after", cursors[n]!);
    get<{ objects: Obj[]; total: number }>(`/dashboard/api/collections/${enc}/objects?${p}`)
      .then((r) => {
        setObjects(r.objects);
        setTotal(r.total);
        setPage(n);
        setError(null);
        if (!where.trim() && r.objects.length) setCursors((c) => [...c.slice(0, n + 1), r.objects[r.objects.length - 1]!.id]);
      })
      .catch(setError);
  };
  useEffect(() => loadPage(0), [name]);
  const search = (e: Event) => {
    e.preventDefault();
    post<{ results: Obj[] }>(`/dashboard/api/collections/${enc}/search`, { nearText: text, limit: 10 }).then((r) => { setResults(r.results); setError(null); }).catch(setError);
  };
  const props = def?.properties.map((p) => p.name) ?? [];
  return (
    <div class="page" data-page="collection">
      <div class="crumbs"><a href={link("/collections")}>Collections</a> / <b>{name}</b></div>
      <ErrorNote error={error} />
      <div class="grid-1-2">
        <Card title="Schema">
          {def && (
            <>
              <dl class="kv">
                <dt>Vectorizer</dt><dd>{def.vectorizer}</dd>
                <dt>Index</dt><dd>{def.vectorIndexType} · {String(def.vectorIndexConfig.distance ?? "")}</dd>
                <dt>Objects</dt><dd>{fmtInt(total)}</dd>
              </dl>
              <table class="table compact">
                <thead><tr><th>Property</th><th>Type</th></tr></thead>
                <tbody>{def.properties.map((p) => <tr><td class="mono">{p.name}</td><td class="mono sub">{p.dataType.join(", ")}</td></tr>)}</tbody>
              </table>
            </>
          )}
        </Card>
        <Card title="Search" right={<span class="muted">nearText through the collection's vectorizer (BM25 and hybrid: not yet)</span>}>
          <form class="filters" onSubmit={search}>
            <label class="grow">nearText<input name="nearText" type="search" placeholder="a concept, e.g. biology" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} /></label>
            <button class="btn primary" type="submit" disabled={!text.trim()}>Search</button>
          </form>
          {results && (
            <table class="table results">
              <thead><tr><th>Distance</th>{props.slice(0, 3).map((p) => <th>{p}</th>)}</tr></thead>
              <tbody>
                {results.map((r) => <tr data-result={r.id}><td class="num mono">{r.distance?.toFixed(4) ?? "—"}</td>{props.slice(0, 3).map((p) => <td class="clip">{show(r.properties[p])}</td>)}</tr>)}
                {results.length === 0 && <tr><td class="empty" colSpan={4}>Nothing found.</td></tr>}
              </tbody>
            </table>
          )}
        </Card>
      </div>
      <Card title="Objects" class="flush" right={<span class="muted">{fmtInt(total)} in all</span>}>
        <form class="filters" onSubmit={(e) => { e.preventDefault(); setCursors([undefined]); loadPage(0); }}>
          <label class="grow">where (Weaviate filter, JSON)<input name="where" placeholder='{"path":["category"],"operator":"Equal","valueText":"SCIENCE"}' value={where} onInput={(e) => setWhere((e.target as HTMLInputElement).value)} /></label>
          <button class="btn" type="submit">Apply</button>
        </form>
        <table class="table objects">
          <thead><tr><th>id</th>{props.slice(0, 4).map((p) => <th>{p}</th>)}</tr></thead>
          <tbody>
            {objects.map((o) => <tr><td class="mono sub" title={o.id}>{o.id.slice(0, 8)}</td>{props.slice(0, 4).map((p) => <td class="clip">{show(o.properties[p])}</td>)}</tr>)}
          </tbody>
        </table>
        <div class="more">
          <button class="btn" disabled={page === 0} onClick={() => loadPage(page - 1)}>← Previous</button>
          <span class="muted">page {page + 1}</span>
          <button class="btn" disabled={(page + 1) * 25 >= total} onClick={() => loadPage(page + 1)}>Next →</button>
        </div>
      </Card>
    </div>
  );
}

function show(v: unknown): string {
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}
