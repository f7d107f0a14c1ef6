/** The lot use cases over in-memory stores: the quota and window are the admin's, the count the service's. */
import { describe, expect, it } from "vitest";
import { Admin, lotLedgerKey } from "../../../domain/admin/index.ts";
import { NotFoundError, PreconditionFailedError, StateConflictError } from "../../../domain/errors.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { countInLot } from "../../support/lot-count.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";

describe("lots", () => {
  it("creates a lot with no devices counted, and updates its quota keeping the count", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    await admin.lots.put(ACTOR, "L1", { maxDevices: 2 }, { create: true });
    await countInLot(world.deps, "L1");

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

  it("removes a lot that counts no device and no record names, with a ledger entry", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    await admin.lots.put(ACTOR, "L1", { maxDevices: 2 }, { create: true });

    // Act
    await admin.lots.remove(ACTOR, "L1", 1);

    // Assess
    await expect(admin.lots.get("L1")).rejects.toBeInstanceOf(NotFoundError);
    expect(world.ledger.changes(lotLedgerKey("L1")).at(-1)).toEqual({
      action: "delete",
      before: { lot: "L1", maxDevices: 2 },
      previousVersion: 1,
    });
  });

  it("refuses to remove a lot that counts devices, one a record names, or one at another version, changing nothing", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [{ deviceId: "dev-1", status: "allowed", lot: "named", version: 1 }],
      lots: [
        { lot: "counted", provisionedCount: 1, version: 1 },
        { lot: "named", provisionedCount: 0, version: 1 },
        { lot: "moved", provisionedCount: 0, version: 2 },
      ],
    });
    const admin = new Admin(world.deps);

    // Act
    const counted = admin.lots.remove(ACTOR, "counted", undefined);
    const named = admin.lots.remove(ACTOR, "named", undefined);
    const moved = admin.lots.remove(ACTOR, "moved", 1);
    const missing = admin.lots.remove(ACTOR, "missing", undefined);

    // Assess
    await expect(counted).rejects.toThrow(StateConflictError);
    await expect(counted).rejects.toThrow(/counts 1 provisioned device/);
    await expect(named).rejects.toThrow(/records still name lot named \(dev-1, maybe more\)/);
    await expect(moved).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(missing).rejects.toBeInstanceOf(NotFoundError);
    for (const lot of ["counted", "named", "moved"]) expect(await world.lots.get(lot)).toBeDefined();
    expect(world.ledger.entries).toEqual([]);
  });

  it("refuses a removal that loses the race to a device counted meanwhile", async () => {
    // Prepare: the lot is read with no device counted; a provisioning counts one before the delete
    const world = makeAdminWorld({ lots: [{ lot: "L1", maxDevices: 5, provisionedCount: 0, version: 1 }] });
    const admin = new Admin(world.deps);
    const remove = world.lots.remove.bind(world.lots);
    world.lots.remove = async (lot, version) => {
      await countInLot(world.deps, lot);
      return remove(lot, version);
    };

    // Act
    const removal = admin.lots.remove(ACTOR, "L1", undefined);

    // Assess
    await expect(removal).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await world.lots.get("L1")).toMatchObject({ provisionedCount: 1 });
  });
});
