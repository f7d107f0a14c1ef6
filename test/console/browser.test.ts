/*
 * The admin console in a real headless Chromium against a local stack, with real devices over MQTT/TLS:
 * an admin finds a quarantined device, reads why, fixes its record, approves it and the device gets in;
 * edits a mapping and sees the what-if; imports a file with a bad line; and the console refuses a browser
 * without the per-run secret. axe-core checks every page; the approve flow is walked by keyboard alone.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConsoleServer } from "../../console/server.ts";
import { axeViolations, launchChromium, serveConsole } from "../support/browser.ts";
import { startTestStack } from "../support/local-stack.ts";

let t: Awaited<ReturnType<typeof startTestStack>>;
let server: ConsoleServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Errors thrown in the page (a script that fails to load shows here, not as a missing heading). */
const pageErrors: string[] = [];

/** Opens a page of the console by its route and waits for its heading. */
async function open(route: string, heading: string | RegExp): Promise<void> {
  await page.goto(`${server.origin}#/${route}`);
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
}

/** Connects a device that the service quarantines (the record's window has passed); answers it. */
async function quarantined(deviceId: string) {
  await t.allow(deviceId, { notAfter: "2020-01-01T00:00:00.000Z" });
  const device = await t.device(deviceId);
  const attempt = await t.connect(device);
  expect(attempt.client).toBeUndefined();
  expect(t.status(device.certificateId)).toBe("INACTIVE");
  return device;
}

beforeAll(async () => {
  [t, browser] = await Promise.all([startTestStack(), launchChromium()]);
  await t.map({ selector: "default", policy: { template: "sensor" } });
  server = await serveConsole(t.stack.endpoints.adminApi, t.stack.adminToken);
  context = await browser.newContext();
  // a machine shared with other work can be slow: elements are waited for, never a fixed time
  context.setDefaultTimeout(60_000);
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(server.openUrl);
  await page
    .getByRole("heading", { level: 1, name: "Devices" })
    .waitFor()
    .catch((error: unknown) => {
      throw new Error(`the console did not render: ${pageErrors.join("; ") || String(error)}`);
    });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await t?.close();
});

afterAll(() => {
  expect(pageErrors).toEqual([]);
});

describe("the admin console in Chromium", () => {
  it("signs in with the printed address, then drops the token from the address bar", async () => {
    expect(page.url()).toBe(server.origin);
    expect(page.url()).not.toContain("token");
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: "Strict" });
  });

  it("refuses a browser without the per-run secret, and the spent address", async () => {
    const stranger = await browser.newContext();
    try {
      const other = await stranger.newPage();
      const bare = await other.goto(server.origin);
      expect(bare?.status()).toBe(401);
      const spent = await other.goto(server.openUrl);
      expect(spent?.status()).toBe(403);
      const api = await other.request.get(`${server.origin}api/allowlist`);
      expect(api.status()).toBe(401);
    } finally {
      await stranger.close();
    }
  });

  it("finds a quarantined device, reads why, fixes its record, approves it, and the device gets in", async () => {
    const device = await quarantined("console-q1");

    await open("approvals", "Approve queue");
    const row = page.getByRole("row", { name: /console-q1/ });
    await expect.poll(() => row.textContent()).toContain("entry-not-valid-now");
    await row.getByRole("link", { name: "console-q1" }).click();

    await page.getByRole("heading", { level: 1, name: "Device console-q1" }).waitFor();
    const decision = page.getByRole("region", { name: "Decision now" });
    await expect.poll(() => decision.textContent()).toContain("entry-not-valid-now");

    await page.getByRole("button", { name: "Edit record" }).click();
    await page.getByLabel("Not after").fill("");
    await page.getByRole("button", { name: "Save record" }).click();
    await expect
      .poll(() => page.getByRole("status").first().textContent())
      .toContain("console-q1 saved at version 2");

    await page.getByRole("button", { name: "Approve", exact: true }).click();
    await expect
      .poll(() => page.getByRole("status").first().textContent())
      .toContain("Approved: console-q1 is provisioned");
    expect(t.status(device.certificateId)).toBe("ACTIVE");

    const online = await t.connect(device);
    expect(online.client?.connected).toBe(true);
  });

  it("edits a mapping and shows the what-if before it can be saved", async () => {
    await open("mappings", "Mappings");
    await page.getByRole("button", { name: "Edit mapping default" }).click();
    const save = page.getByRole("button", { name: "Save mapping" });
    await page.getByLabel("Policy", { exact: true }).fill("command-only");
    expect(await save.isDisabled()).toBe(true);

    await page.getByRole("button", { name: "Preview what-if" }).click();
    const whatIf = page.getByRole("region", { name: "What-if" });
    await expect.poll(() => whatIf.textContent()).toMatch(/1 of 1 provisioned devices would change/);
    const affected = whatIf.getByRole("row", { name: /console-q1/ });
    expect(await affected.textContent()).toContain("policy");
    expect(await save.isDisabled()).toBe(false);

    await page.getByLabel("Policy", { exact: true }).fill("no-such-template");
    expect(await save.isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Preview what-if" }).click();
    // the server's validation message shows under the field at fault
    await expect.poll(() => page.locator("#m-policy-error").textContent()).toMatch(/\S/);
  });

  it("imports a file with one bad line: the dry run reports it, the import writes the good lines", async () => {
    await open("import", "Import");
    const lines = [
      JSON.stringify({ deviceId: "console-imp-1", status: "allowed" }),
      JSON.stringify({ deviceId: "console-imp-2", status: "sometimes" }),
      JSON.stringify({ deviceId: "console-imp-3", status: "allowed", lot: "L1" }),
    ];
    await page.getByLabel("File").setInputFiles({
      name: "fleet.jsonl",
      mimeType: "application/x-ndjson",
      buffer: Buffer.from(`${lines.join("\n")}\n`),
    });
    const dryRun = page.getByRole("region", { name: /Dry run of fleet\.jsonl/ });
    await expect.poll(() => dryRun.textContent()).toContain("1 rejected");
    const rejected = dryRun.getByRole("row", { name: /^2 / });
    expect(await rejected.textContent()).toMatch(/status/);
    expect((await t.admin("GET", "/allowlist/console-imp-1")).status).toBe(404);

    await page.getByRole("button", { name: "Import fleet.jsonl" }).click();
    const imported = page.getByRole("region", { name: "Imported" });
    await expect.poll(() => imported.textContent()).toContain("2 to create");
    await expect
      .poll(() => page.getByRole("progressbar", { name: "Import progress" }).getAttribute("value"))
      .toBe("3");
    expect((await t.admin("GET", "/allowlist/console-imp-1")).status).toBe(200);
    expect((await t.admin("GET", "/allowlist/console-imp-2")).status).toBe(404);
  });

  it("walks the approve flow by keyboard alone", async () => {
    const device = await quarantined("console-k1");
    await t.admin("PUT", "/allowlist/console-k1", { status: "allowed" }, { "if-match": '"1"' });

    await page.goto(`${server.origin}#/devices`);
    await page.getByRole("heading", { level: 1, name: "Devices" }).waitFor();
    /** Presses Tab until the focused element is the one named, at most `limit` times. */
    async function tabTo(name: string, limit = 60): Promise<void> {
      for (let i = 0; i < limit; i++) {
        await page.keyboard.press("Tab");
        const focused = await page.evaluate(
          () =>
            document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.textContent ?? "",
        );
        if (focused.trim() === name) return;
      }
      throw new Error(`Tab never reached ${name}`);
    }
    await tabTo("Approve queue");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "Approve queue" }).waitFor();
    await page.getByRole("row", { name: /console-k1/ }).waitFor();
    await expect.poll(() => page.getByRole("row", { name: /console-k1/ }).textContent()).toContain("ready");
    await tabTo("Approve console-k1");
    await page.keyboard.press("Enter");
    await expect
      .poll(() => page.getByRole("status").first().textContent())
      .toContain("console-k1: provisioned");
    expect(t.status(device.certificateId)).toBe("ACTIVE");
  });

  it("edits with If-Match: a record saved meanwhile shows both versions; block takes the device out", async () => {
    await t.allow("console-e1", { note: "first" });
    await open("devices", "Devices");
    await page.getByLabel("Device id starts with").fill("console-e");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("button", { name: "Edit console-e1" }).click();
    await page.getByLabel("Note").fill("mine");
    // someone else saves the record at version 1 first
    expect(
      (
        await t.admin(
          "PUT",
          "/allowlist/console-e1",
          { status: "allowed", note: "theirs" },
          { "if-match": '"1"' },
        )
      ).status,
    ).toBe(200);
    await page.getByRole("button", { name: "Save record" }).click();

    const conflict = page.getByRole("region", { name: "Conflicting versions" });
    await expect.poll(() => conflict.textContent()).toContain("now version 2");
    expect(await conflict.getByRole("figure").first().textContent()).toContain('"mine"');
    expect(await conflict.getByRole("figure").last().textContent()).toContain('"theirs"');
    await conflict.getByRole("button", { name: /Keep mine/ }).click();
    await page.getByRole("button", { name: "Save record" }).click();
    await expect
      .poll(() => page.getByRole("status").first().textContent())
      .toContain("console-e1 saved at version 3");
    expect((await t.admin("GET", "/allowlist/console-e1")).json).toMatchObject({ note: "mine", version: 3 });

    page.once("dialog", (dialog) => {
      expect(dialog.message()).toContain("Block console-e1?");
      void dialog.accept();
    });
    await page.getByRole("button", { name: "Block console-e1" }).click();
    await expect
      .poll(() => page.getByRole("status").first().textContent())
      .toContain("console-e1 is blocked");
    expect((await t.admin("GET", "/allowlist/console-e1")).json).toMatchObject({ status: "blocked" });
  });

  it("has no serious or critical accessibility violation on any page", async () => {
    await t.admin("PUT", "/lots/L1", { maxDevices: 10 }, { "if-none-match": "*" });
    const pages: [string, string | RegExp][] = [
      ["devices", "Devices"],
      ["devices/console-q1", "Device console-q1"],
      ["approvals", "Approve queue"],
      ["mappings", "Mappings"],
      ["lots", "Lots"],
      ["import", "Import"],
      ["activity", "Activity"],
    ];
    const found: Record<string, unknown> = {};
    for (const [route, heading] of pages) {
      await open(route, heading);
      await page.waitForFunction(() => !document.body.textContent?.includes("Loading…"));
      if (route === "mappings") await page.getByRole("button", { name: "Edit mapping default" }).click();
      const violations = await axeViolations(page);
      if (violations.length > 0) found[route] = violations;
    }
    expect(found).toEqual({});
  });
});
