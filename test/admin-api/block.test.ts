/** Blocking cuts a device off, deprovision with block retires it; over dynalite tables and FakeIot. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransientError } from "../../domain/errors.ts";
import { provision } from "../../domain/provision.ts";
import { certificateIdOf, issueCertificate } from "../../pki/certificates.ts";
import type { FakeIot } from "../support/fakes.ts";
import { CA_ID, eventFor, testCa } from "../support/world.ts";
import { startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(() => worlds.close());

const CREATE = { "if-none-match": "*" };
type Settable = Parameters<FakeIot["updateCertificateStatus"]>[1];
type Entry = { kind: string; change?: Record<string, unknown> };

/** A world with a mapping, and helpers to register and provision a device's certificate. */
async function fleet() {
  const w = await worlds.world();
  await w.call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
  const register = async (deviceId: string) => {
    const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
    const certificateId = certificateIdOf(issued.certificatePem);
    w.iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
    return { certificateId, event: eventFor(certificateId) };
  };
  /** An allowlisted device whose certificate is provisioned (ACTIVE). */
  const provisioned = async (deviceId: string, record: Record<string, unknown> = {}) => {
    await w.call("PUT", `/allowlist/${deviceId}`, { body: record, headers: CREATE });
    const cert = await register(deviceId);
    expect(await provision(cert.event, w.deps)).toMatchObject({ outcome: "provisioned" });
    return cert;
  };
  /** Puts the record with the given fields over the stored version. */
  const put = async (deviceId: string, body: Record<string, unknown>, query = "") => {
    const current = await w.call("GET", `/allowlist/${deviceId}`);
    const version = String((current.json as { version: number }).version);
    return w.call("PUT", `/allowlist/${deviceId}${query}`, { body, headers: { "if-match": version } });
  };
  const ledger = async (deviceId: string) =>
    ((await w.call("GET", `/devices/${deviceId}/history`)).json as { items: Entry[] }).items;
  return { ...w, register, provisioned, put, ledger };
}

describe("blocking a provisioned device", () => {
  it("revokes every certificate of the device, answers what it did and records one ledger entry", async () => {
    // Prepare: two certificates on one thing (allow-multiple)
    const { provisioned, register, deps, iot, put, ledger } = await fleet();
    const first = await provisioned("dev-b", { rotation: "allow-multiple" });
    const second = await register("dev-b");
    expect(await provision(second.event, deps)).toMatchObject({ outcome: "provisioned" });

    // Act
    const blocked = await put("dev-b", { status: "blocked", rotation: "allow-multiple" });

    // Assess
    expect(blocked.status).toBe(200);
    expect(blocked.json).toMatchObject({
      status: "blocked",
      block: { mode: "revoke", complete: true, errors: [] },
    });
    const block = (blocked.json as { block: { changed: string[] } }).block;
    expect(block.changed.sort()).toEqual([first.certificateId, second.certificateId].sort());
    expect([iot.statusOf(first.certificateId), iot.statusOf(second.certificateId)]).toEqual([
      "REVOKED",
      "REVOKED",
    ]);
    const blocks = (await ledger("dev-b")).filter((e) => e.change?.action === "block");
    expect(blocks).toHaveLength(1);
    expect(blocks[0]?.change).toMatchObject({ mode: "revoke", complete: true });
  });

  it("suspends with suspend=true; unblocking changes only the record; approve brings the bound certificate back", async () => {
    // Prepare
    const { provisioned, iot, put, call } = await fleet();
    const cert = await provisioned("dev-s");

    // Act
    const suspended = await put("dev-s", { status: "blocked" }, "?suspend=true");
    const whileBlocked = await call("POST", "/devices/dev-s/approve");
    const statusWhileBlocked = iot.statusOf(cert.certificateId);
    const unblocked = await put("dev-s", { status: "allowed" });
    const statusAfterUnblock = iot.statusOf(cert.certificateId);
    const approved = await call("POST", "/devices/dev-s/approve");

    // Assess
    expect(suspended.json).toMatchObject({
      block: { mode: "suspend", changed: [cert.certificateId], complete: true },
    });
    expect(whileBlocked.status).toBe(409);
    expect(whileBlocked.json).toMatchObject({ error: { message: expect.stringContaining("blocked") } });
    expect(statusWhileBlocked).toBe("INACTIVE");
    expect(unblocked.status).toBe(200);
    expect(unblocked.json).not.toHaveProperty("block");
    expect(statusAfterUnblock).toBe("INACTIVE");
    expect(approved.status).toBe(200);
    expect(approved.json).toMatchObject({ outcome: "provisioned", certificateId: cert.certificateId });
    expect(iot.statusOf(cert.certificateId)).toBe("ACTIVE");
  });

  it("keeps a revoked certificate revoked on unblock; the device comes back with a new certificate", async () => {
    // Prepare
    const { provisioned, register, deps, iot, put } = await fleet();
    const old = await provisioned("dev-r");
    await put("dev-r", { status: "blocked" });

    // Act
    await put("dev-r", { status: "allowed" });
    const fresh = await register("dev-r");
    const result = await provision(fresh.event, deps);

    // Assess
    expect(iot.statusOf(old.certificateId)).toBe("REVOKED");
    expect(result).toMatchObject({ outcome: "provisioned", certificateId: fresh.certificateId });
    expect(iot.statusOf(fresh.certificateId)).toBe("ACTIVE");
  });

  it("leaves a suspended certificate suspended when the blocked record is written again", async () => {
    // Prepare
    const { provisioned, iot, put } = await fleet();
    const cert = await provisioned("dev-k");
    await put("dev-k", { status: "blocked" }, "?suspend=true");

    // Act
    const edited = await put("dev-k", { status: "blocked", note: "returned to vendor" });

    // Assess
    expect(edited.json).toMatchObject({ note: "returned to vendor", block: { changed: [], complete: true } });
    expect(iot.statusOf(cert.certificateId)).toBe("INACTIVE");
  });

  it("reports a failure part-way, and writing the blocked record again finishes the work", async () => {
    // Prepare: the registry refuses the status change (beyond the retries)
    const { provisioned, iot, put, ledger, clock } = await fleet();
    const cert = await provisioned("dev-f");
    iot.failOn("updateCertificateStatus", () => new TransientError("throttled"), 3);

    // Act
    const first = await put("dev-f", { status: "blocked" });
    const statusBetween = iot.statusOf(cert.certificateId);
    clock.set(new Date(clock.now().getTime() + 1000));
    const retried = await put("dev-f", { status: "blocked" });

    // Assess
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      status: "blocked",
      block: {
        complete: false,
        changed: [],
        certificates: [{ certificateId: cert.certificateId, error: expect.stringContaining("throttled") }],
      },
    });
    expect(statusBetween).toBe("ACTIVE");
    expect(retried.json).toMatchObject({ block: { complete: true, changed: [cert.certificateId] } });
    expect(iot.statusOf(cert.certificateId)).toBe("REVOKED");
    const blocks = (await ledger("dev-f")).filter((e) => e.change?.action === "block");
    expect(blocks.map((e) => e.change?.complete)).toEqual([true, false]);
  });

  it("refuses suspend=true on a record not written blocked, and a bad flag, changing nothing", async () => {
    // Prepare
    const { provisioned, iot, put, scan } = await fleet();
    const cert = await provisioned("dev-v");
    const before = await scan("allowlist");

    // Act
    const notBlocked = await put("dev-v", { status: "allowed" }, "?suspend=true");
    const badFlag = await put("dev-v", { status: "blocked" }, "?suspend=yes");

    // Assess
    expect(notBlocked.status).toBe(400);
    expect(badFlag.status).toBe(400);
    expect(await scan("allowlist")).toEqual(before);
    expect(iot.statusOf(cert.certificateId)).toBe("ACTIVE");
  });

  it("leaves no certificate ACTIVE when the block lands while the device is being provisioned", async () => {
    // Prepare: the block is written just before the provisioning run activates the certificate
    const { call, register, deps, iot, put } = await fleet();
    await call("PUT", "/allowlist/dev-race", { body: {}, headers: CREATE });
    const cert = await register("dev-race");
    const update = iot.updateCertificateStatus.bind(iot);
    let blockedOnce = false;
    iot.updateCertificateStatus = async (certificateId: string, status: Settable) => {
      if (status === "ACTIVE" && !blockedOnce) {
        blockedOnce = true;
        await put("dev-race", { status: "blocked" }, "?suspend=true");
      }
      return update(certificateId, status);
    };

    // Act
    const result = await provision(cert.event, deps).catch((error: unknown) => error);

    // Assess
    expect(blockedOnce).toBe(true);
    expect(result).toBeInstanceOf(Error);
    expect(iot.statusOf(cert.certificateId)).toBe("INACTIVE");
  });
});

describe("deprovision and the record", () => {
  it("keeps the record allowed by default, so the device comes back with a new certificate", async () => {
    // Prepare
    const { provisioned, register, deps, call } = await fleet();
    await provisioned("dev-d");

    // Act
    const done = await call("POST", "/devices/dev-d/deprovision");
    const fresh = await register("dev-d");
    const result = await provision(fresh.event, deps);

    // Assess
    expect(done.json).toMatchObject({ recordStatus: "allowed", revoked: true });
    expect(result).toMatchObject({ outcome: "provisioned" });
  });

  it("retires the device with block=true: the record is blocked and a new certificate is revoked", async () => {
    // Prepare
    const { provisioned, register, deps, call, iot } = await fleet();
    const old = await provisioned("dev-x");

    // Act
    const done = await call("POST", "/devices/dev-x/deprovision?block=true");
    const fresh = await register("dev-x");
    const result = await provision(fresh.event, deps);

    // Assess
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ recordStatus: "blocked", revoked: true, thingDeleted: true });
    expect((await deps.allowlist.get("dev-x"))?.status).toBe("blocked");
    expect(iot.statusOf(old.certificateId)).toBe("REVOKED");
    expect(result).toMatchObject({ outcome: "denied", reason: "blocked", certificateStatus: "REVOKED" });
  });

  it("refuses block=true on a device that is not provisioned, leaving its record allowed", async () => {
    // Prepare
    const { call, deps } = await fleet();
    await call("PUT", "/allowlist/dev-n", { body: {}, headers: CREATE });

    // Act
    const refused = await call("POST", "/devices/dev-n/deprovision?block=true");

    // Assess
    expect(refused.status).toBe(409);
    expect((await deps.allowlist.get("dev-n"))?.status).toBe("allowed");
  });
});
