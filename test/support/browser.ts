/*
 * A real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; nothing downloaded) and
 * the admin console served against a test stack's admin API, for the browser tests and the screenshots.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { type Browser, chromium, type Page } from "playwright-core";
import { bearer, nodeTransport } from "../../cli/api-client.ts";
import { loadAssets } from "../../console/assets.ts";
import { type ConsoleServer, startConsoleServer } from "../../console/server.ts";

/** Where Debian installs Chromium (JITR_CHROMIUM overrides). */
export const CHROMIUM = process.env.JITR_CHROMIUM ?? "/usr/bin/chromium";

/** Launches headless Chromium with a fresh, empty profile and no background traffic. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (see .ci/run)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The console in front of a local admin API (bearer token), on a free port. */
export async function serveConsole(adminApi: string, adminToken: string): Promise<ConsoleServer> {
  return startConsoleServer({
    upstream: { baseUrl: new URL(adminApi), sign: bearer(adminToken), transport: nodeTransport },
    assets: await loadAssets(),
  });
}

/** A serious or critical accessibility violation axe-core found. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe-core (from node_modules) in the page; answers its serious and critical violations. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const source = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  // evaluated through the DevTools protocol: the page's content security policy does not apply
  await page.evaluate(source);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: RawViolation[] }> } }).axe;
    interface RawViolation {
      id: string;
      impact: string | null;
      help: string;
      nodes: { target: unknown[] }[];
    }
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => String(n.target)),
      }));
  });
}
