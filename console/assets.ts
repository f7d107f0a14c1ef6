/*
 * The console's page, script and style. An installed package carries the script bundled at build time
 * (dist/console/app.js, written by scripts/build.ts); a clone running its sources bundles console/web/ on
 * demand with esbuild (a devDependency, through scripts/console-bundle.ts), in memory. Either way nothing
 * is fetched from the network.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { ConsoleAssets } from "./server.ts";
import { CONSOLE_STYLE } from "./style.ts";

/** The bundled script's file name, beside this module once built. */
export const BUNDLE_FILE = "app.js";

/** The page: a shell that loads the script and style; the script renders everything. */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jitr console</title>
<link rel="stylesheet" href="/app.css">
<script type="module" src="/app.js"></script>
</head>
<body><div id="app"></div></body>
</html>
`;

/**
 * Bundles the script from the sources (a clone). The bundler is development tooling in scripts/, loaded by
 * a URL made at run time so the build neither compiles nor ships it: the installed package has the file.
 */
async function bundleFromSources(): Promise<string> {
  const tooling = new URL("../scripts/console-bundle.ts", import.meta.url);
  if (!existsSync(tooling)) {
    throw new Error("the console's page script is not built: run `npm ci && npm run build`");
  }
  const { bundleScript } = (await import(tooling.href)) as { bundleScript: () => Promise<string> };
  return bundleScript();
}

/** The console's assets: the prebuilt script when there is one beside this module, else bundled now. */
export async function loadAssets(): Promise<ConsoleAssets & { bundled: "prebuilt" | "on-demand" }> {
  const prebuilt = fileURLToPath(new URL(`./${BUNDLE_FILE}`, import.meta.url));
  if (existsSync(prebuilt)) {
    return {
      html: CONSOLE_HTML,
      style: CONSOLE_STYLE,
      script: await readFile(prebuilt, "utf8"),
      bundled: "prebuilt",
    };
  }
  return {
    html: CONSOLE_HTML,
    style: CONSOLE_STYLE,
    script: await bundleFromSources(),
    bundled: "on-demand",
  };
}
