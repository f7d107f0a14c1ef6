/** The allowlist use cases over in-memory stores: read, list, write, delete and export. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import {
  DeviceBoundError,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
  ValidationError,
} from "../../../domain/errors.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const CERTIFICATE = "d".repeat(64);
const CA = "a".repeat(64);

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

describe("allowlist records", () => {
  it("creates a record, stamped, with status allowed by default, and records it in the device's ledger", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const written = await admin.allowlist.put(ACTOR, "dev-1", { profile: "sensor" }, { create: true });

    // Assess
    expect(written).toMatchObject({
      created: true,
      value: { deviceId: "dev-1", status: "allowed", profile: "sensor", version: 1, updatedBy: ACTOR },
    });
    expect(await admin.allowlist.get("dev-1")).toEqual(written.value);
    expect(world.ledger.changes("dev-1")).toEqual([
      { action: "create", after: { deviceId: "dev-1", status: "allowed", profile: "sensor" }, version: 1 },
    ]);
  });

  it("keeps a blocked record blocked and the service's binding when an update leaves them out", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [
        {
          deviceId: "dev-1",
          status: "blocked",
          version: 1,
          certificateId: CERTIFICATE,
          thingName: "dev-1",
          policyName: "jitr-sensor",
          provisionedAt: "2026-01-01T00:00:00.000Z",
        },
      ],
    });
    const admin = new Admin(world.deps);

    // Act
    const updated = await admin.allowlist.put(ACTOR, "dev-1", { note: "found again?" }, { version: 1 });

    // Assess
    expect(updated.value).toMatchObject({
      status: "blocked",
      note: "found again?",
      version: 2,
      certificateId: CERTIFICATE,
      thingName: "dev-1",
    });
    expect(world.ledger.changes("dev-1")).toEqual([
      {
        action: "update",
        before: { deviceId: "dev-1", status: "blocked" },
        after: { deviceId: "dev-1", status: "blocked", note: "found again?" },
        version: 2,
        previousVersion: 1,
      },
    ]);
  });

  it("validates before any precondition: a bad body is a ValidationError naming each field", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const refused = admin.allowlist.put(ACTOR, "dev-1", { status: "maybe", color: "red" }, undefined);

    // Assess
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
    await expect(refused).rejects.toMatchObject({
      issues: expect.arrayContaining([
        { path: "status", message: "must be one of allowed, blocked" },
        { path: "color", message: expect.stringContaining("is not a known field") },
      ]),
    });
    expect(world.allowlist.records.size).toBe(0);
  });

  it("asks for a precondition when a valid write names none", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const bare = admin.allowlist.put(ACTOR, "dev-1", {}, undefined);

    // Assess
    await expect(bare).rejects.toBeInstanceOf(PreconditionRequiredError);
    await expect(bare).rejects.toMatchObject({ what: "allowlist record dev-1" });
  });

  it("answers NotFoundError for a missing record and ValidationError for a device id that is no thing name", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const missing = admin.allowlist.get("ghost");
    const bad = admin.allowlist.get("bad id");

    // Assess
    await expect(missing).rejects.toThrow(new NotFoundError("no allowlist record for device ghost"));
    await expect(bad).rejects.toMatchObject({ issues: [{ path: "deviceId" }] });
  });

  it("lists by status and lot, a page at a time", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [0, 1, 2, 3, 4].map((i) => ({
        deviceId: `dev-${i}`,
        status: i % 2 === 0 ? ("allowed" as const) : ("blocked" as const),
        lot: i < 3 ? "L1" : "L2",
        version: 1,
      })),
    });
    const admin = new Admin(world.deps);

    // Act
    const first = await admin.allowlist.list({}, { limit: 2 });
    const rest = await admin.allowlist.list({}, { limit: 10, cursor: first.cursor });
    const blockedInL1 = await admin.allowlist.list({ status: "blocked", lot: "L1" }, { limit: 10 });

    // Assess
    expect([...first.items, ...rest.items].map((r) => r.deviceId)).toEqual([
      "dev-0",
      "dev-1",
      "dev-2",
      "dev-3",
      "dev-4",
    ]);
    expect(rest.cursor).toBeUndefined();
    expect(blockedInL1.items.map((r) => r.deviceId)).toEqual(["dev-1"]);
  });

  it("deletes a record that is not bound, at the version given, recording what it was", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [{ deviceId: "dev-1", status: "allowed", profile: "p", version: 3 }],
    });
    const admin = new Admin(world.deps);

    // Act
    await admin.allowlist.remove(ACTOR, "dev-1", 3);

    // Assess
    expect(world.allowlist.records.size).toBe(0);
    expect(world.ledger.changes("dev-1")).toEqual([
      { action: "delete", before: { deviceId: "dev-1", status: "allowed", profile: "p" } },
    ]);
  });

  it("refuses to delete a record bound to an ACTIVE certificate, saying to deprovision first", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [{ deviceId: "dev-1", status: "allowed", version: 1, certificateId: CERTIFICATE }],
    });
    world.iot.addCertificate(CERTIFICATE, "pem", CA, "ACTIVE");
    const admin = new Admin(world.deps);

    // Act
    const refused = admin.allowlist.remove(ACTOR, "dev-1", undefined);

    // Assess
    await expect(refused).rejects.toBeInstanceOf(DeviceBoundError);
    await expect(refused).rejects.toMatchObject({
      deviceId: "dev-1",
      certificateId: CERTIFICATE,
      certificateStatus: "ACTIVE",
      message: expect.stringContaining("deprovision it first"),
    });
    expect(world.allowlist.records.has("dev-1")).toBe(true);
  });

  it("deletes a record bound to a REVOKED certificate", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [{ deviceId: "dev-1", status: "allowed", version: 1, certificateId: CERTIFICATE }],
    });
    world.iot.addCertificate(CERTIFICATE, "pem", CA, "REVOKED");
    const admin = new Admin(world.deps);

    // Act
    await admin.allowlist.remove(ACTOR, "dev-1", undefined);

    // Assess
    expect(world.allowlist.records.size).toBe(0);
  });

  it("refuses a delete at a stale version, and one that loses a race to a binding", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [{ deviceId: "dev-1", status: "allowed", version: 2 }] });
    const admin = new Admin(world.deps);

    // Act
    const stale = admin.allowlist.remove(ACTOR, "dev-1", 1);
    await stale.catch(() => undefined);
    world.allowlist.beforeNextWrite(() => {
      const record = world.allowlist.records.get("dev-1");
      if (record) record.certificateId = CERTIFICATE;
    });
    const raced = admin.allowlist.remove(ACTOR, "dev-1", undefined);

    // Assess
    await expect(stale).rejects.toMatchObject({ failure: { kind: "stale", stored: 2 } });
    await expect(raced).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(raced).rejects.toMatchObject({ failure: { kind: "changed" } });
    expect(world.allowlist.records.has("dev-1")).toBe(true);
    expect(world.ledger.entries).toEqual([]);
  });

  it("exports each record's admin fields as a JSON line, across pages", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: Array.from({ length: 1201 }, (_, i) => ({
        deviceId: `e-${String(i).padStart(4, "0")}`,
        status: "allowed" as const,
        version: 1,
        certificateId: CERTIFICATE,
        updatedBy: ACTOR,
      })),
    });
    const admin = new Admin(world.deps);

    // Act
    const lines = await collect(admin.allowlist.export());

    // Assess
    expect(lines).toHaveLength(1201);
    expect(JSON.parse(lines[0] ?? "")).toEqual({ deviceId: "e-0000", status: "allowed" });
    expect(world.allowlist.calls.filter((c) => c === "list")).toHaveLength(3);
  });
});
