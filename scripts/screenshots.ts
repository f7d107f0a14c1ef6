/**
 * Screenshots of the admin console's main pages, for the README: a local stack in memory with a small
 * fleet (provisioned, quarantined and denied devices, a lot, mappings), the console in front of it, and
 * Debian's headless Chromium (the browser the tests use) writing PNGs to docs/screenshots/.
 *
 *   npm run screenshots
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { launchChromium, serveConsole } from "../test/support/browser.ts";
import { startTestStack } from "../test/support/local-stack.ts";

const out = resolve(import.meta.dirname, "..", "docs", "screenshots");
const PAGES: [file: string, route: string, heading: string][] = [
  ["devices", "devices", "Devices"],
  ["device", "devices/sensor-003", "Device sensor-003"],
  ["approve-queue", "approvals", "Approve queue"],
  ["mappings", "mappings", "Mappings"],
  ["lots", "lots", "Lots"],
  ["import", "import", "Import"],
  ["activity", "activity", "Activity"],
];

const t = await startTestStack();
const browser = await launchChromium();
try {
  await t.map({ selector: "default", policy: { template: "sensor" } });
  await t.map({ selector: "profile:gateway", policy: { template: "gateway" }, thingGroups: ["gateways"] });
  await t.admin("PUT", "/lots/lot-2026-a", { maxDevices: 10 }, { "if-none-match": "*" });
  for (let i = 1; i <= 6; i++) await t.allow(`sensor-00${i}`, { lot: "lot-2026-a", profile: "sensor" });
  await t.allow("sensor-003", { lot: "lot-2026-a", notAfter: "2020-01-01T00:00:00.000Z" });
  await t.allow("gw-001", { profile: "gateway" });
  for (const id of ["sensor-001", "sensor-002", "sensor-003", "sensor-004", "gw-001", "stranger-9"]) {
    await t.connect(await t.device(id));
  }
  const server = await serveConsole(t.stack.endpoints.adminApi, t.stack.adminToken);
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  await page.goto(server.openUrl);
  await mkdir(out, { recursive: true });
  for (const [file, route, heading] of PAGES) {
    await page.goto(`${server.origin}#/${route}`);
    await page.getByRole("heading", { level: 1, name: heading }).waitFor();
    await page.waitForFunction(() => !document.body.textContent?.includes("Loading…"));
    if (route === "mappings") {
      await page.getByRole("button", { name: "Edit mapping default" }).click();
      await page.getByLabel("Policy", { exact: true }).fill("command-only");
      await page.getByRole("button", { name: "Preview what-if" }).click();
      await page.getByRole("region", { name: "What-if" }).waitFor();
    }
    await page.screenshot({ path: join(out, `${file}.png`), fullPage: true });
    console.error(`wrote docs/screenshots/${file}.png`);
  }
  await server.close();
} finally {
  await browser.close();
  await t.close();
}
