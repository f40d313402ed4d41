import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

/*
 * The dashboard in a real browser: Debian's chromium (/usr/bin/chromium) driven by playwright-core, offline (no
 * browser download, no network). Screenshots go to $OPENBATCH_SCREENSHOTS (README images: docs/dashboard) or a temp dir.
 */

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`dashboard browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
const SHOTS = process.env.OPENBATCH_SCREENSHOTS ?? join(tmpdir(), "openbatch-dashboard-shots");

describe.skipIf(!HAVE_CHROMIUM)("dashboard in chromium", () => {
  let browser: Browser;
  let fake: FakeUpstream;
  let server: TestServer;
  let origin: string;
  let hold = false;

  beforeAll(async () => {
    // The page as `npm ci` builds it (also type-checks its sources).
    execFileSync(process.execPath, ["scripts/build-dashboard.mjs", "--check"], { stdio: "inherit" });
    await mkdir(SHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    fake = await new FakeUpstream().start();
    fake.plan = (call) =>
      hold ? { kind: "held" }
      : call.key.startsWith("boom") ? { kind: "status", status: 400, body: JSON.stringify({ error: { message: `bad prompt: ${call.key}`, type: "invalid_request_error" } }) }
      : { kind: "delay", ms: 20 };
    server = await startServer({ ...upstreamConfig(fake.url), prices: { "fake-model": { input: 2.5, output: 10 } } });
    origin = server.url.replace(/\/v1$/, "");
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await fake?.stop();
  });

  /** A fresh page that records console errors and failed requests; `check()` asserts there were none. */
  async function open(context?: BrowserContext): Promise<{ page: Page; check: (allowed?: RegExp) => void }> {
    const page = await (context ?? browser).newPage({ viewport: { width: 1360, height: 900 } });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => {
      // A stream cut when the page closes is not a fault.
      if (!r.url().endsWith("/dashboard/api/stream")) problems.push(`requestfailed: ${r.url()}`);
    });
    page.on("request", (r) => {
      const url = new URL(r.url());
      if (url.protocol !== "blob:" && url.protocol !== "data:" && url.hostname !== "127.0.0.1") problems.push(`off-site request: ${r.url()}`);
    });
    return { page, check: (allowed) => expect(problems.filter((p) => !allowed?.test(p))).toEqual([]) };
  }

  it("loads every page with no console errors and says auth is off", async () => {
    const { page, check } = await open();
    for (const hash of ["#/", "#/batches", "#/new", "#/collections"]) {
      await page.goto(`${origin}/dashboard${hash}`);
      await page.locator(".main .page").first().waitFor();
    }
    await expect.poll(() => page.getByTestId("auth-state").textContent()).toContain("Auth is off");
    await expect.poll(() => page.getByTestId("live").textContent()).toBe("Live");
    check();
    await page.close();
  });

  it("shows a batch's row progress to completed, its page finds a custom_id and groups the failing request", async () => {
    const { page, check } = await open();
    hold = true;
    const client = server.client();
    const keys = [...Array.from({ length: 40 }, (_, i) => `question ${i}`), "boom-1", "boom-2"];
    const file = await uploadJsonl(client, chatLines(keys));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { project: "demo" } });
    await waitFor(client, batch.id, (b) => b.status === "in_progress");
    await page.goto(`${origin}/dashboard#/batches`);
    const row = page.locator(`tr[data-batch="${batch.id}"]`);
    await expect.poll(() => row.getAttribute("data-status")).toBe("in_progress");
    hold = false;
    fake.release();
    // The row changes through the live stream: no reload.
    await expect.poll(() => row.getAttribute("data-status"), { timeout: 30_000 }).toBe("completed");
    expect(await row.locator(".counts").textContent()).toContain("40 ok · 2 failed · 42 total");
    await page.screenshot({ path: join(SHOTS, "batches.png") });

    await row.locator("a.mono").click();
    await page.locator(`[data-page="batch"][data-batch="${batch.id}"]`).waitFor();
    await expect.poll(() => page.getByTestId("count-completed").textContent()).toBe("40");
    const group = page.locator('tr[data-error-group="http:400"]');
    await group.waitFor();
    expect(await group.locator("td.num").textContent()).toBe("2");
    expect(await group.textContent()).toContain("bad prompt: boom-1");

    await page.fill('input[name="custom_id"]', "req-40");
    const item = page.locator('[data-custom-id="req-40"]');
    await item.locator(".side-by-side").waitFor();
    const sides = item.locator(".side-by-side > div");
    expect(await sides.nth(0).textContent()).toContain('"content": "boom-1"');
    expect(await sides.nth(1).textContent()).toContain("bad prompt: boom-1");
    await page.screenshot({ path: join(SHOTS, "batch.png"), fullPage: true });

    await page.goto(`${origin}/dashboard#/`);
    await page.locator('[data-testid="throughput-chart"] canvas').waitFor();
    await page.waitForTimeout(1200); // one more tick on the chart before the picture
    await page.screenshot({ path: join(SHOTS, "overview.png"), fullPage: true });
    check();
    await page.close();
  });

  it("cancels a running batch from its page", async () => {
    const { page, check } = await open();
    hold = true;
    fake.plan = () => ({ kind: "delay", ms: 60_000 });
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["slow 1", "slow 2", "slow 3"]));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitFor(client, batch.id, (b) => b.status === "in_progress");
    await page.goto(`${origin}/dashboard#/batches/${batch.id}`);
    await page.getByRole("button", { name: "Cancel batch" }).click();
    await expect.poll(() => page.locator(".batch-head .pill").getAttribute("data-status"), { timeout: 30_000 }).toBe("cancelled");
    expect((await client.batches.retrieve(batch.id)).status).toBe("cancelled");
    check();
    await page.close();
  });

  it("checks a dropped JSONL: a bad file shows its line errors, a good one becomes a batch", async () => {
    fake.plan = () => ({ kind: "ok" });
    const { page, check } = await open();
    await page.goto(`${origin}/dashboard#/new`);
    const good = chatLines(["a", "b", "c"]);
    const bad = good + "{oops\n" + JSON.stringify({ custom_id: "req-9", method: "GET", url: "/v1/chat/completions", body: {} }) + "\n";
    await page.setInputFiles('input[type="file"]', { name: "bad.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(bad) });
    await page.locator("table.line-errors").waitFor();
    expect(await page.locator('tr[data-line="4"]').textContent()).toContain("invalid_json_line");
    expect(await page.locator('tr[data-line="5"]').textContent()).toContain("method");
    await page.screenshot({ path: join(SHOTS, "new-batch.png"), fullPage: true });

    await page.setInputFiles('input[type="file"]', { name: "good.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(good) });
    await expect.poll(() => page.getByTestId("check-requests").textContent()).toBe("3");
    await page.getByRole("button", { name: "Create batch" }).click();
    await page.locator('[data-page="batch"]').waitFor();
    const id = await page.locator('[data-page="batch"]').getAttribute("data-batch");
    const created = await waitFor(server.client(), id!);
    expect(created.status).toBe("completed");
    expect(created.request_counts?.completed).toBe(3);
    check();
    await page.close();
  });

  it("with two keys, asks for a key and key B's pages never show key A's batches", async () => {
    const keyed = await startServer({ ...upstreamConfig(fake.url), apiKeys: ["key-A-0001", "key-B-0002"] });
    try {
      const keyedOrigin = keyed.url.replace(/\/v1$/, "");
      const a = keyed.client("key-A-0001");
      const file = await uploadJsonl(a, chatLines(["secret of A"]));
      const batchA = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { owner: "A" } });
      await waitFor(a, batchA.id);
      const b = keyed.client("key-B-0002");
      const fileB = await uploadJsonl(b, chatLines(["B's own"]));
      const batchB = await b.batches.create({ input_file_id: fileB.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      await waitFor(b, batchB.id);

      const context = await browser.newContext();
      const { page, check } = await open(context);
      await page.goto(`${keyedOrigin}/dashboard#/batches`);
      await page.locator('input[name="apiKey"]').fill("wrong-key");
      await page.getByRole("button", { name: "Open dashboard" }).click();
      await expect.poll(() => page.locator(".prompt .note-error").textContent()).toContain("Incorrect API key");
      await page.locator('input[name="apiKey"]').fill("key-B-0002");
      await page.getByRole("button", { name: "Open dashboard" }).click();
      await page.locator(`tr[data-batch="${batchB.id}"]`).waitFor();
      expect(await page.getByTestId("auth-state").textContent()).toContain("••••0002");
      expect(await page.content()).not.toContain(batchA.id);
      await page.goto(`${keyedOrigin}/dashboard#/batches/${batchA.id}`);
      await expect.poll(() => page.locator(".note-error").textContent()).toContain("No batch found");
      await page.goto(`${keyedOrigin}/dashboard#/`);
      await page.locator('[data-page="overview"]').waitFor();
      expect(await page.content()).not.toContain(batchA.id);
      expect(await page.content()).not.toContain("upstream-key");
      // The key is kept for the tab only.
      expect(await page.evaluate(() => sessionStorage.getItem("openbatch.dashboard.key"))).toBe("key-B-0002");
      expect(await page.evaluate(() => localStorage.length)).toBe(0);
      await page.screenshot({ path: join(SHOTS, "keyed-overview.png") });
      // The wrong key's 401 and A's batch's 404 are the only errors the console shows.
      check(/status of (401|404)/);
      await context.close();
    } finally {
      await keyed.close();
    }
  });
});
