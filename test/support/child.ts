import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BUILT_CLI = join(ROOT, "dist", "cli", "main.js");

let builtIsFresh: boolean | null = null;

/**
 * True when dist/cli/main.js was built after every file under src/ last changed (the dashboard page aside), so running
 * it runs the source as it is; checked once per test process.
 */
function freshBuild(): boolean {
  if (builtIsFresh !== null) return builtIsFresh;
  try {
    const built = statSync(BUILT_CLI).mtimeMs;
    const src = join(ROOT, "src");
    builtIsFresh = readdirSync(src, { recursive: true, encoding: "utf8" })
      .filter((f) => !f.startsWith(join("web", "page")))
      .every((f) => statSync(join(src, f)).mtimeMs <= built);
  } catch {
    builtIsFresh = false;
  }
  return builtIsFresh;
}

/**
 * Spawns the openbatch CLI, as a user's process would run it: from source through tsx, or, with `built` and a dist/
 * built after the last change to src/ (`npx tsc -p tsconfig.json`; CI's `npm ci` builds it), dist/cli/main.js, which
 * starts in about a third of the CPU time (for tests that start many processes). A stale dist is never run.
 */
export function spawnCli(args: string[], env: Record<string, string> = {}, opts: { built?: boolean } = {}): ChildProcess & { output: () => string } {
  const entry = opts.built && freshBuild() ? [BUILT_CLI] : ["--import", "tsx", "src/cli/main.ts"];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, OPENBATCH_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  return Object.assign(child, { output: () => output });
}

/** Resolves with the exit code once the process exits. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once("exit", (code) => r(code)));
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Polls `url` until it answers 200. */
export async function waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} never became healthy`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
