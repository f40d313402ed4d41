import { readFile } from "node:fs/promises";
import { parseConfig, type Config } from "../core/config.js";

/**
 * Loads the `--config` JSON file (or `{}` when none is given) and adds keys from `OPENBATCH_API_KEYS`
 * (comma-separated) to `apiKeys`.
 * @throws Error for an unreadable file, bad JSON, or an invalid config (the message names the field).
 */
export async function loadConfig(path: string | undefined, env = process.env): Promise<Config> {
  let raw: unknown = {};
  if (path) {
    const text = await readFile(path, "utf8").catch((err) => {
      throw new Error(`Cannot read config file ${path}: ${(err as Error).message}`);
    });
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`Config file ${path} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const config = parseConfig(raw, env);
  const fromEnv = (env.OPENBATCH_API_KEYS ?? "").split(",").map((k) => k.trim()).filter(Boolean);
  config.apiKeys = [...new Set([...config.apiKeys, ...fromEnv])];
  return config;
}
