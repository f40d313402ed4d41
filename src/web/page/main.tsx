import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { authError, clearAuthError, connectStream, get, getKey, onAuthChange, onLive, setKey } from "./api";
import { BatchPage } from "./batch";
import { Batches } from "./batches";
import { CollectionPage, Collections } from "./collections";
import { NewBatch } from "./newbatch";
import { Overview } from "./overview";
import "./styles.css";

interface Route { path: string; query: URLSearchParams }

function routeOf(): Route {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = h.split("?");
  return { path: path || "/", query: new URLSearchParams(qs ?? "") };
}

function useRoute(): Route {
  const [r, setR] = useState(routeOf);
  useEffect(() => {
    const on = () => setR(routeOf());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return r;
}

interface Session { auth: boolean; admin: boolean }

function KeyPrompt({ onKey }: { onKey: (k: string) => void }) {
  const [value, setValue] = useState("");
  return (
    <div class="prompt-wrap">
      <form class="card prompt" onSubmit={(e) => { e.preventDefault(); if (value.trim()) onKey(value.trim()); }}>
        <div class="brand big"><Logo /> OpenBatch</div>
        <p>This server has API keys on. Enter your OpenBatch key to see your batches, files and collections.</p>
        {authError && <div class="note note-error" role="alert">{authError}</div>}
        <input type="password" name="apiKey" autoFocus placeholder="OpenBatch API key" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <button class="btn primary" type="submit">Open dashboard</button>
        <p class="muted small">The key stays in this tab's session storage and is sent only to this server.</p>
      </form>
    </div>
  );
}

function Logo() {
  return (
    <svg viewBox="0 0 32 32" width="22" height="22" aria-hidden="true">
      <rect width="32" height="32" rx="7" fill="#6366f1" />
      <rect x="7" y="8" width="18" height="4" rx="2" fill="#fff" />
      <rect x="7" y="14" width="13" height="4" rx="2" fill="#c7d2fe" />
      <rect x="7" y="20" width="8" height="4" rx="2" fill="#a5b4fc" />
    </svg>
  );
}

function App() {
  const route = useRoute();
  const [mode, setMode] = useState<{ auth: boolean } | null>(null);
  const [session, setSession] = useState<Session | null>(null);
  const [key, setKeyState] = useState(getKey());
  const [live, setLive] = useState(false);
  useEffect(() => void fetch("/dashboard/api/mode").then((r) => r.json()).then(setMode), []);
  useEffect(() => onAuthChange(() => setKeyState(getKey())), []);
  useEffect(() => onLive(setLive), []);
  useEffect(() => {
    if (!mode || (mode.auth && !key)) return;
    get<Session>("/dashboard/api/session").then((s) => { clearAuthError(); setSession(s); connectStream(); }).catch(() => setSession(null));
  }, [mode, key]);
  if (!mode) return <div class="loading center">Loading…</div>;
  if (mode.auth && !key) return <KeyPrompt onKey={(k) => setKey(k)} />;
  if (!session) return <div class="loading center">Connecting…</div>;
  const p = route.path;
  const nav = (to: string, label: string, match: (p: string) => boolean) => <a href={`#${to}`} class={match(p) ? "active" : ""}>{label}</a>;
  let body;
  let title = "Overview";
  let m: RegExpMatchArray | null;
  if ((m = p.match(/^\/batches\/([^/]+)$/))) { body = <BatchPage id={decodeURIComponent(m[1]!)} />; title = "Batch"; }
  else if (p === "/batches") { body = <Batches query={route.query} />; title = "Batches"; }
  else if (p === "/new") { body = <NewBatch />; title = "New batch"; }
  else if ((m = p.match(/^\/collections\/([^/]+)$/))) { body = <CollectionPage name={decodeURIComponent(m[1]!)} />; title = "Collection"; }
  else if (p === "/collections") { body = <Collections />; title = "Collections"; }
  else body = <Overview />;
  return (
    <div class="shell">
      <aside class="side">
        <div class="brand"><Logo /> OpenBatch</div>
        <nav>
          {nav("/", "Overview", (x) => x === "/")}
          {nav("/batches", "Batches", (x) => x.startsWith("/batches"))}
          {nav("/new", "New batch", (x) => x === "/new")}
          {nav("/collections", "Collections", (x) => x.startsWith("/collections"))}
        </nav>
        <div class="side-foot">
          <div class={`live ${live ? "on" : ""}`} data-testid="live"><span class="dot" />{live ? "Live" : "Reconnecting…"}</div>
          {session.auth ? (
            <div class="who">
              <span data-testid="auth-state">{session.admin ? "Admin key" : "API key"} ••••{(key ?? "").slice(-4)}</span>
              <button class="link" onClick={() => { setKey(null); setSession(null); }}>Sign out</button>
            </div>
          ) : (
            <div class="who warn" data-testid="auth-state">Auth is off: anyone who can reach this server sees everything.</div>
          )}
        </div>
      </aside>
      <main class="main">
        <header class="top"><h1>{title}</h1></header>
        {body}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
