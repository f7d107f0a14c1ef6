/** The lot use cases over in-memory stores: the quota and window are the admin's, the count the service's. */
import { describe, expect, it } from "vitest";
import { Admin, lotLedgerKey } from "../../../domain/admin/index.ts";
import { NotFoundError } from "../../../domain/errors.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";

describe("lots", () => {
  it("creates a lot with no devices counted, and updates its quota keeping the count", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    await admin.lots.put(ACTOR, "L1", { maxDevices: 2 }, { create: true });
    await world.lots.reserve("L1");

    // Act
    const updated = await admin.lots.put(
      ACTOR,
      "L1",
      { maxDevices: 5, notAfter: "2030-01-01" },
      { version: 1 },
    );

    // Assess
    expect(updated.value).toMatchObject({ lot: "L1", maxDevices: 5, provisionedCount: 1, version: 2 });
    expect(await admin.lots.get("L1")).toMatchObject({
      maxDevices: 5,
      provisionedCount: 1,
      notAfter: "2030-01-01",
    });
    expect(world.ledger.changes(lotLedgerKey("L1"))).toEqual([
      { action: "create", after: { lot: "L1", maxDevices: 2 }, version: 1 },
      {
        action: "update",
        before: { lot: "L1", maxDevices: 2 },
        after: { lot: "L1", maxDevices: 5, notAfter: "2030-01-01" },
        version: 2,
        previousVersion: 1,
      },
    ]);
  });

  it("updates a lot stored without a version at version 0", async () => {
    // Prepare
    const world = makeAdminWorld({ lots: [{ lot: "old", provisionedCount: 3 }] });
    const admin = new Admin(world.deps);

    // Act
    const updated = await admin.lots.put(ACTOR, "old", { maxDevices: 10 }, { version: 0 });

    // Assess
    expect(updated.value).toMatchObject({ lot: "old", maxDevices: 10, provisionedCount: 3, version: 1 });
  });

  it("refuses the service's count in a body, and answers NotFoundError for a missing lot", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const refused = admin.lots.put(ACTOR, "L1", { provisionedCount: 3 }, { create: true });
    const missing = admin.lots.get("none");

    // Assess
    await expect(refused).rejects.toMatchObject({
      issues: [{ path: "provisionedCount", message: "is written by the service and cannot be set" }],
    });
    await expect(missing).rejects.toThrow(new NotFoundError("no lot none"));
  });

  it("lists lots a page at a time", async () => {
    // Prepare
    const world = makeAdminWorld({
      lots: ["L1", "L2", "L3"].map((lot) => ({ lot, provisionedCount: 0, version: 1 })),
    });
    const admin = new Admin(world.deps);

    // Act
    const first = await admin.lots.list({ limit: 2 });
    const rest = await admin.lots.list({ limit: 2, cursor: first.cursor });

    // Assess
    expect(first.items.map((l) => l.lot)).toEqual(["L1", "L2"]);
    expect(rest).toEqual({ items: [expect.objectContaining({ lot: "L3" })] });
  });
});
