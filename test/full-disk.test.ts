import { execFileSync } from "node:child_process";
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiError, chatLines, startServer, uploadJsonl, type TestServer } from "./support/harness.js";

/** A 16 MiB tmpfs to fill (needs root, as on CI and the dev machines); null where it cannot be mounted. */
function mountTinyDisk(): string | null {
  const dir = mkdtempSync(join(tmpdir(), "openbatch-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", dir], { stdio: "ignore" });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

/** Writes zeros into `path` until the disk is full. */
function fill(path: string): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}

const disk = mountTinyDisk();

describe.skipIf(disk === null)("a full disk: 507 with a clear message, deletes free space, recovery by itself", () => {
  let server: TestServer;
  const filler = join(disk ?? "", "filler");
  beforeAll(async () => {
    server = await startServer({}, { dataDir: join(disk!, "data") });
  });
  afterAll(async () => {
    await server?.close();
    execFileSync("umount", ["-l", disk!]);
    rmSync(disk!, { recursive: true, force: true });
  });

  it("upload on a full disk → 507 in OpenAI's shape; delete still frees space; uploads work again once there is room", async () => {
    const client = server.client();
    const big = await uploadJsonl(client, chatLines(Array.from({ length: 4000 }, (_, i) => `some text to take room ${i}`)), "big.jsonl");
    fill(filler);
    const full = await apiError(uploadJsonl(client, chatLines(Array.from({ length: 4000 }, (_, i) => `more ${i}`))));
    expect(full.status).toBe(507);
    expect(full.error).toMatchObject({ code: "insufficient_storage", message: expect.stringMatching(/out of storage space/) });
    // Deleting is how a user frees space: it must work on the full disk.
    expect((await client.files.delete(big.id)).deleted).toBe(true);
    expect((await apiError(client.files.retrieve(big.id))).status).toBe(404);
    rmSync(filler);
    const again = await uploadJsonl(client, chatLines(["a"]));
    expect((await client.files.retrieve(again.id)).bytes).toBeGreaterThan(0);
  });
});
