import { readFileSync } from "node:fs";

/** The version in jitr's package.json, found from this module both in the sources and in the build (dist/). */
export function packageVersion(): string {
  for (const candidate of ["../package.json", "../../package.json"]) {
    let text: string;
    try {
      text = readFileSync(new URL(candidate, import.meta.url), "utf8");
    } catch {
      continue;
    }
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null) continue;
    const { name, version } = parsed as { name?: unknown; version?: unknown };
    if (name === "jitr" && typeof version === "string") return version;
  }
  return "unknown";
}
