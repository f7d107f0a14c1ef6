/** The fleet-wide routes through the admin router on dynalite: GET /ledger, GET /approvals, mapping and lot history. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision } from "../../domain/provision.ts";
import { certificateIdOf, issueCertificate } from "../../pki/certificates.ts";
import { CA_ID, eventFor, testCa } from "../support/world.ts";
import { startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(async () => worlds.close());

const create = { "if-none-match": "*" };

type World = Awaited<ReturnType<typeof worlds.world>>;

/** Moves the world's clock on a second, so entries written next sort after those before. */
const tick = (w: World) => w.clock.set(new Date(w.clock.now().getTime() + 1000));

/** A world where `deviceId` connected with a new certificate and was decided (quarantined, unless allowed). */
async function connected(w: World, deviceId: string) {
  tick(w);
  const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
  const certificateId = certificateIdOf(issued.certificatePem);
  w.iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
  const result = await provision(eventFor(certificateId), w.deps);
  tick(w);
  return { certificateId, result };
}

describe("GET /ledger", () => {
  it("lists every device's outcomes newest first, filtered by kind, reason, lot and time", async () => {
    // Prepare: one device quarantined for a lot that does not exist, one not allowlisted, one admin change
    const w = await worlds.world();
    await w.call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: create });
    tick(w);
    await w.call("PUT", "/allowlist/in-lot", {
      body: { status: "allowed", lot: "lot-9" },
      headers: create,
    });
    tick(w);
    await connected(w, "in-lot");
    await connected(w, "stranger");

    // Act
    const all = await w.call("GET", "/ledger");
    const byLot = await w.call("GET", "/ledger?lot=lot-9");
    const byReason = await w.call("GET", "/ledger?kind=denied&reason=not-allowlisted");
    const admin = await w.call("GET", "/ledger?kind=admin&since=1h");
    const future = await w.call("GET", "/ledger?since=2999-01-01T00:00:00Z");

    // Assess
    expect(all.status).toBe(200);
    const devices = (r: { json: unknown }) =>
      (r.json as { items: { deviceId: string }[] }).items.map((e) => e.deviceId);
    expect(devices(all)).toEqual(["stranger", "in-lot", "in-lot", "#mapping:default"]);
    expect(byLot.json).toMatchObject({
      items: [{ deviceId: "in-lot", kind: "denied", reason: "lot-quota-exceeded", lot: "lot-9" }],
    });
    expect(devices(byReason)).toEqual(["stranger"]);
    expect(devices(admin)).toEqual(["in-lot", "#mapping:default"]);
    expect(devices(future)).toEqual([]);
  });

  it("refuses an unknown kind, a malformed time or lot and a forged cursor with 400 naming each", async () => {
    // Prepare
    const w = await worlds.world();

    // Act
    const bad = await w.call("GET", "/ledger?kind=everything&since=yesterday&lot=a%20b");
    const cursor = await w.call("GET", "/ledger?cursor=bm90LWEtY3Vyc29y");
    const method = await w.call("POST", "/ledger");

    // Assess
    expect(bad.status).toBe(400);
    expect((bad.json as { error: { details: { path: string }[] } }).error.details.map((d) => d.path)).toEqual(
      ["kind", "lot", "since"],
    );
    expect(cursor.status).toBe(400);
    expect(method.status).toBe(405);
  });
});

describe("GET /approvals", () => {
  it("lists a quarantined device with its reason, ready once its record allows it, and gone once approved", async () => {
    // Prepare
    const w = await worlds.world();
    await w.call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: create });
    tick(w);
    const { certificateId } = await connected(w, "late-1");
    await connected(w, "still-unknown");

    // Act
    const before = await w.call("GET", "/approvals");
    await w.call("PUT", "/allowlist/late-1", { body: { status: "allowed" }, headers: create });
    tick(w);
    const after = await w.call("GET", "/approvals");
    const approved = await w.call("POST", "/devices/late-1/approve");
    tick(w);
    const afterApproval = await w.call("GET", "/approvals");

    // Assess
    expect(before.json).toMatchObject({
      items: [
        { deviceId: "still-unknown", ready: false, now: { decision: "deny", reason: "not-allowlisted" } },
        { deviceId: "late-1", certificateId, reason: "not-allowlisted", ready: false },
      ],
    });
    expect(after.json).toMatchObject({
      items: [
        { deviceId: "still-unknown", ready: false },
        { deviceId: "late-1", ready: true },
      ],
    });
    expect(approved.json).toMatchObject({ outcome: "provisioned" });
    expect((afterApproval.json as { items: { deviceId: string }[] }).items.map((a) => a.deviceId)).toEqual([
      "still-unknown",
    ]);
  });

  it("leaves out a quarantined certificate an admin has since revoked", async () => {
    // Prepare
    const w = await worlds.world();
    const { certificateId } = await connected(w, "gone-1");
    await w.iot.updateCertificateStatus(certificateId, "REVOKED");

    // Act
    const queue = await w.call("GET", "/approvals");

    // Assess
    expect(queue.json).toEqual({ items: [] });
  });
});

describe("GET /mappings/{selector}/history and /lots/{lot}/history", () => {
  it("answers who changed the record, when, from which version, with the fields before and after", async () => {
    // Prepare
    const w = await worlds.world();
    await w.call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: create });
    tick(w);
    await w.call("PUT", "/mappings/default", {
      body: { policy: { template: "gateway" } },
      headers: { "if-match": '"1"' },
      actor: "arn:aws:iam::123456789012:user/bob",
    });
    tick(w);
    await w.call("PUT", "/lots/lot-1", { body: { maxDevices: 5 }, headers: create });
    tick(w);
    await w.call("PUT", "/lots/lot-1", { body: { maxDevices: 50 }, headers: { "if-match": '"1"' } });
    tick(w);

    // Act
    const mapping = await w.call("GET", "/mappings/default/history");
    const lot = await w.call("GET", "/lots/lot-1/history?limit=1");
    const badSelector = await w.call("GET", "/mappings/nonsense/history");

    // Assess
    expect(mapping.json).toMatchObject({
      items: [
        {
          actor: "arn:aws:iam::123456789012:user/bob",
          change: {
            action: "update",
            previousVersion: 1,
            version: 2,
            before: { policy: { template: "sensor" } },
            after: { policy: { template: "gateway" } },
          },
        },
        { actor: "arn:aws:iam::123456789012:user/alice", change: { action: "create", version: 1 } },
      ],
    });
    expect(lot.json).toMatchObject({
      items: [
        {
          change: {
            action: "update",
            previousVersion: 1,
            before: { maxDevices: 5 },
            after: { maxDevices: 50 },
          },
        },
      ],
      cursor: expect.any(String),
    });
    expect(badSelector.status).toBe(400);
  });
});
