import { useState } from "preact/hooks";
import { post, postForm, type BatchRow } from "./api";
import { Card, ErrorNote, fmtInt, fmtUsd, Stat } from "./ui";

interface Check {
  requests: number; bytes: number; endpoint: string | null; model: string | null; provider: string | null; mode: string;
  input_tokens: number; max_output_tokens: number; cost: { regular: number; batch: number } | null;
  errors: { line: number | null; code: string; message: string; param: string | null }[];
}

/** Largest file checked in the page (the server's JSON body limit); bigger ones go through the CLI or the API. */
const MAX_BYTES = 32 * 1024 * 1024;

export function NewBatch() {
  const [file, setFile] = useState<File | null>(null);
  const [check, setCheck] = useState<Check | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(false);
  const [window_, setWindow] = useState("24h");
  const take = async (f: File | undefined) => {
    if (!f) return;
    setFile(f);
    setCheck(null);
    setError(null);
    if (f.size > MAX_BYTES) {
      setError(new Error(`${f.name} is ${(f.size / 1e6).toFixed(0)} MB; the page checks files up to 32 MB. Use \`openbatch estimate\` and the Files API for larger ones.`));
      return;
    }
    setBusy(true);
    try {
      setCheck(await post<Check>("/dashboard/api/check", await f.text(), "text/plain"));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const create = async () => {
    if (!file || !check?.endpoint) return;
    setBusy(true);
    try {
      const form = new FormData();
      form.set("purpose", "batch");
      form.set("file", file, file.name);
      const uploaded = await postForm<{ id: string }>("/v1/files", form);
      const batch = await post<BatchRow>("/v1/batches", { input_file_id: uploaded.id, endpoint: check.endpoint, completion_window: window_, metadata: { source: "dashboard" } });
      location.hash = `#/batches/${batch.id}`;
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const ok = check !== null && check.errors.length === 0;
  return (
    <div class="page" data-page="new">
      <Card title="New batch" right={<span class="muted">OpenAI Batch input: one JSON request per line</span>}>
        <label
          class={`drop ${over ? "over" : ""}`}
          onDragOver={(e) => { e.preventDefault(); setOver(true); }}
          onDragLeave={() => setOver(false)}
          onDrop={(e) => { e.preventDefault(); setOver(false); void take(e.dataTransfer?.files[0]); }}
        >
          <input type="file" accept=".jsonl,.ndjson,.json,.txt" name="file" onChange={(e) => void take((e.target as HTMLInputElement).files?.[0])} />
          <div class="drop-text">
            <b>{file ? file.name : "Drop a JSONL file here"}</b>
            <span class="muted">{file ? `${fmtInt(file.size)} bytes` : "or click to choose one"}</span>
          </div>
        </label>
        {busy && <div class="loading">{check ? "Creating…" : "Checking…"}</div>}
        <ErrorNote error={error} />
      </Card>
      {check && (
        <>
          <div class="stats">
            <Stat label="Requests" value={<span data-testid="check-requests">{fmtInt(check.requests)}</span>} hint={check.endpoint ?? "no endpoint"} />
            <Stat label="Model" value={<span class="mono small">{check.model ?? "—"}</span>} hint={check.provider ? `→ ${check.provider} (${check.mode})` : "no provider routes it"} />
            <Stat label="Tokens" value={fmtInt(check.input_tokens)} hint={`prompt · up to ${fmtInt(check.max_output_tokens)} out`} />
            <Stat label="Cost estimate" value={check.cost ? fmtUsd(check.cost.batch) : "—"} hint={check.cost ? `batch price · ${fmtUsd(check.cost.regular)} one call at a time` : "no price in the config's prices"} tone="ok" />
          </div>
          {check.errors.length > 0 ? (
            <Card title={`${fmtInt(check.errors.length)}${check.errors.length >= 100 ? "+" : ""} problems — fix them to create the batch`} class="bad-card">
              <table class="table line-errors">
                <thead><tr><th>Line</th><th>Code</th><th>Problem</th></tr></thead>
                <tbody>
                  {check.errors.map((e) => (
                    <tr data-line={e.line ?? ""}><td class="mono num">{e.line ?? "—"}</td><td class="mono">{e.code}</td><td>{e.message}</td></tr>
                  ))}
                </tbody>
              </table>
            </Card>
          ) : (
            <Card>
              <div class="create-row">
                <span>Every line is valid.</span>
                <label>Completion window<select value={window_} onChange={(e) => setWindow((e.target as HTMLSelectElement).value)}>{["1h", "24h", "72h", "7d"].map((w) => <option>{w}</option>)}</select></label>
                <button class="btn primary" disabled={!ok || busy} onClick={create}>Create batch</button>
              </div>
            </Card>
          )}
        </>
      )}
    </div>
  );
}
