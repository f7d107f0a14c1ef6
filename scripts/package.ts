/**
 * Packages the service offline (`osls package --stage dev`, no AWS credentials or calls) and prints the size
 * of each function's zip and of the bundle inside it.
 *
 *   npm run package                                  # stage dev, into .serverless/
 *   npm run package -- --stage prod --param caCertificateIds=<id>   # any further osls options
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { readZip } from "./package-zip.ts";

const root = resolve(import.meta.dirname, "..");
const args = process.argv.slice(2);
const stageGiven = args.some((arg) => arg === "--stage" || arg.startsWith("--stage="));
const packageDirIndex = args.indexOf("--package");
const packageDir = resolve(root, packageDirIndex >= 0 ? (args[packageDirIndex + 1] ?? "") : ".serverless");

const osls = join(
  dirname(createRequire(import.meta.url).resolve("osls/package.json")),
  "bin",
  "serverless.js",
);
const started = Date.now();
const run = spawnSync(
  process.execPath,
  [osls, "package", ...(stageGiven ? [] : ["--stage", "dev"]), ...args],
  {
    cwd: root,
    stdio: "inherit",
  },
);
if (run.status !== 0) process.exit(run.status ?? 1);

const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(`\npackaged in ${((Date.now() - started) / 1000).toFixed(1)} s into ${packageDir}`);
for (const file of readdirSync(packageDir).filter((name) => name.endsWith(".zip"))) {
  const entries = readZip(join(packageDir, file));
  const unpacked = entries.reduce((sum, entry) => sum + entry.size, 0);
  console.log(`${file}: ${kib(statSync(join(packageDir, file)).size)} zipped, ${kib(unpacked)} unpacked`);
  for (const entry of entries) console.log(`  ${entry.name}  ${kib(entry.size)}`);
}
