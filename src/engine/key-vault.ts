import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Seals per-batch upstream keys at rest with AES-256-GCM. The 32-byte server secret comes from
 * `OPENBATCH_SECRET` (64 hex chars or base64) or is generated once into `<dataDir>/secret.key` (mode 0600).
 * Sealed form: base64(iv[12] | tag[16] | ciphertext).
 */
export class KeyVault {
  private constructor(private readonly secret: Buffer) {}

  /** Loads or creates the secret. @throws Error when OPENBATCH_SECRET is not 32 bytes. */
  static async open(dataDir: string, envSecret = process.env.OPENBATCH_SECRET): Promise<KeyVault> {
    if (envSecret) {
      const buf = /^[0-9a-f]{64}$/i.test(envSecret) ? Buffer.from(envSecret, "hex") : Buffer.from(envSecret, "base64");
      if (buf.length !== 32) throw new Error("OPENBATCH_SECRET must be 32 bytes, as 64 hex characters or base64.");
      return new KeyVault(buf);
    }
    const file = join(dataDir, "secret.key");
    if (existsSync(file)) return new KeyVault(Buffer.from((await readFile(file, "utf8")).trim(), "hex"));
    const secret = randomBytes(32);
    await writeFile(file, secret.toString("hex"), { mode: 0o600, flag: "wx" });
    return new KeyVault(secret);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.secret, iv);
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
  }

  /** @throws Error when the sealed text was tampered with or sealed under another secret. */
  open(sealed: string): string {
    const raw = Buffer.from(sealed, "base64");
    const decipher = createDecipheriv("aes-256-gcm", this.secret, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  }
}
