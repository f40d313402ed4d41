// Builds the dashboard page (src/web/page) into dist/dashboard/: one script and one stylesheet, with Preact and uPlot
// bundled in, so the page needs nothing from the network. Run by `npm run build` and `prepare` (so `npm ci` builds it).
// `--check` also type-checks the page sources (DOM types, JSX) with their own tsconfig.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist", "dashboard");
if (process.argv.includes("--check")) {
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "src", "web", "page", "tsconfig.json")], { stdio: "inherit" });
}
await mkdir(outdir, { recursive: true });
await build({
  entryPoints: { app: join(root, "src", "web", "page", "main.tsx") },
  bundle: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  minify: true,
  sourcemap: false,
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir,
  logLevel: "warning",
  legalComments: "eof",
});
await writeFile(
  join(outdir, "favicon.svg"),
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#4f46e5"/><rect x="7" y="8" width="18" height="4" rx="2" fill="#fff"/><rect x="7" y="14" width="13" height="4" rx="2" fill="#c7d2fe"/><rect x="7" y="20" width="8" height="4" rx="2" fill="#a5b4fc"/></svg>\n`,
);
