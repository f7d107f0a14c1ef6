/**
 * Where `jitr ca create` and `jitr device create` keep keys by default (under the state directory, so keys
 * never land beside the sources), and the directory checks made before a key is written.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { defaultDataDir } from "../local/contract.ts";
import { CliError } from "./output.ts";

/** The CA directory `jitr ca create` writes and `jitr ca register` and `jitr device create` read by default. */
export const defaultCaDir = (env: NodeJS.ProcessEnv = process.env): string => join(defaultDataDir(env), "ca");

/** The directory `jitr device create` writes device certificates and keys into by default. */
export const defaultDeviceDir = (env: NodeJS.ProcessEnv = process.env): string =>
  join(defaultDataDir(env), "devices");

/**
 * Makes `dir` (owner-only where it creates it) for new key files; refuses, changing nothing, when one of
 * `files` exists and `replace` was not asked for.
 */
export async function prepareKeyDirectory(
  dir: string,
  files: readonly string[],
  replace: boolean,
): Promise<void> {
  const existing = files.filter((file) => existsSync(file));
  if (existing.length > 0 && !replace) {
    throw new CliError(`${existing.join(" and ")} already exist(s); pass --force to replace`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
}
