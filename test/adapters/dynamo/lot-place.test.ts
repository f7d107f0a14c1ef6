/**
 * The lot place (invariant I6) against dynalite: the conditions of the mark, the release claim and the
 * binding writes as a real expression parser evaluates them, and concurrent runs over the adapters.
 */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoAllowlist } from "../../../adapters/dynamo/allowlist.ts";
import { DynamoLedger } from "../../../adapters/dynamo/ledger.ts";
import { DynamoLots } from "../../../adapters/dynamo/lots.ts";
import { DynamoMappings } from "../../../adapters/dynamo/mappings.ts";
import { createDocumentClient } from "../../../adapters/dynamo/table.ts";
import { Admin } from "../../../domain/admin/index.ts";
import { ConflictError } from "../../../domain/errors.ts";
import { provision } from "../../../domain/provision.ts";
import { certificateIdOf, issueCertificate } from "../../../pki/certificates.ts";
import { startDynalite } from "../../support/dynalite.ts";
import { FakeClock, FakeIot, testSettings } from "../../support/fakes.ts";
import { CA_ID, defaultMapping, eventFor, testCa } from "../../support/world.ts";

let db: Awaited<ReturnType<typeof startDynalite>>;

beforeAll(async () => {
  db = await startDynalite();
});

afterAll(async () => {
  await db?.close();
});

/** Stores over the dynalite tables, a fresh lot and device names for each test. */
async function setup(maxDevices?: number) {
  const doc = createDocumentClient(db.client);
  const run = crypto.randomUUID().slice(0, 8);
  const lot = `lot-${run}`;
  const allowlist = new DynamoAllowlist({ doc, table: db.names.allowlist });
  const lots = new DynamoLots({ doc, table: db.names.lots });
  await doc.send(
    new PutCommand({
      TableName: db.names.lots,
      Item: { lot, provisionedCount: 0, version: 1, ...(maxDevices === undefined ? {} : { maxDevices }) },
    }),
  );
  const put = (deviceId: string, extra: Record<string, unknown> = {}) =>
    doc.send(
      new PutCommand({
        TableName: db.names.allowlist,
        Item: { deviceId, status: "allowed", lot, version: 1, ...extra },
      }),
    );
  const count = async () => (await lots.get(lot))?.provisionedCount;
  return { doc, run, lot, allowlist, lots, put, count };
}

describe("the lot place against dynalite", () => {
  it("a mark is written once, and only for the certificate bound", async () => {
    // Prepare
    const { allowlist, lot, put, run } = await setup();
    const deviceId = `dev-${run}`;
    await put(deviceId, { certificateId: "c1" });

    // Act
    const wrongCertificate = await allowlist.markLotCounted({ deviceId, certificateId: "c2", lot });
    const first = await allowlist.markLotCounted({ deviceId, certificateId: "c1", lot });
    const second = await allowlist.markLotCounted({ deviceId, certificateId: "c1", lot });

    // Assess
    expect([wrongCertificate, first, second]).toStrictEqual([false, true, false]);
    expect((await allowlist.get(deviceId))?.lotCounted).toBe(lot);
  });

  it("a mark is taken back only while no release claimed it and no binding completed on it", async () => {
    // Prepare
    const { allowlist, lot, put, run } = await setup();
    const claimed = `claimed-${run}`;
    const completed = `completed-${run}`;
    const plain = `plain-${run}`;
    await put(claimed, {
      certificateId: "c",
      lotCounted: lot,
      lotReleaseStartedAt: "2026-01-01T00:00:00.000Z",
    });
    await put(completed, { certificateId: "c", lotCounted: lot, provisionedAt: "2026-01-01T00:00:00.000Z" });
    await put(plain, { certificateId: "c", lotCounted: lot });

    // Act
    const results = await Promise.all(
      [claimed, completed, plain].map((deviceId) =>
        allowlist.unmarkLotCounted({ deviceId, certificateId: "c", lot }),
      ),
    );

    // Assess
    expect(results).toStrictEqual([false, false, true]);
    expect(await allowlist.get(plain)).not.toHaveProperty("lotCounted");
  });

  it("a release claim holds against the record as read; one claimant wins; the end removes the place", async () => {
    // Prepare
    const { allowlist, lot, put, run } = await setup();
    const deviceId = `dev-${run}`;
    await put(deviceId, { certificateId: "c", lotCounted: lot });
    const claim = { deviceId, lot, boundTo: "c", previousClaim: undefined };

    // Act
    const unbound = await allowlist.claimLotRelease({ ...claim, boundTo: undefined, startedAt: "t0" });
    const won = await allowlist.claimLotRelease({ ...claim, startedAt: "t1" });
    const lost = await allowlist.claimLotRelease({ ...claim, startedAt: "t2" });
    const takenOver = await allowlist.claimLotRelease({ ...claim, previousClaim: "t1", startedAt: "t3" });
    await allowlist.endLotRelease({ deviceId, startedAt: "t1" });
    const whileClaimed = await allowlist.get(deviceId);
    await allowlist.endLotRelease({ deviceId, startedAt: "t3" });

    // Assess
    expect([unbound, won, lost, takenOver]).toStrictEqual([false, true, false, true]);
    expect(whileClaimed).toMatchObject({ lotCounted: lot, lotReleaseStartedAt: "t3" });
    const after = await allowlist.get(deviceId);
    expect(after).not.toHaveProperty("lotCounted");
    expect(after).not.toHaveProperty("lotReleaseStartedAt");
    expect(after?.certificateId).toBe("c");
  });

  it("a binding that depends on a place completes only while the place is held and not being given back", async () => {
    // Prepare
    const { allowlist, lot, put, run } = await setup();
    const held = `held-${run}`;
    const releasing = `releasing-${run}`;
    const none = `none-${run}`;
    await put(held, { certificateId: "c", lotCounted: lot });
    await put(releasing, { certificateId: "c", lotCounted: lot, lotReleaseStartedAt: "t" });
    await put(none, { certificateId: "c" });
    const complete = (deviceId: string) =>
      allowlist
        .completeBinding({
          deviceId,
          certificateId: "c",
          thingName: deviceId,
          policyName: "p",
          provisionedAt: "t",
          lot,
        })
        .then(
          () => "completed",
          (error: unknown) => (error instanceof ConflictError ? "conflict" : error),
        );

    // Act
    const results = [await complete(held), await complete(releasing), await complete(none)];

    // Assess
    expect(results).toStrictEqual(["completed", "conflict", "conflict"]);
  });

  it("unbind and remove refuse a record that holds a place; an admin update keeps it", async () => {
    // Prepare
    const { allowlist, lot, put, run } = await setup();
    const deviceId = `dev-${run}`;
    await put(deviceId, { certificateId: "c", lotCounted: lot });

    // Act
    const unbound = await allowlist.unbind(deviceId, "c");
    const removed = await allowlist.remove(deviceId, { version: 1, certificateId: "c" });
    const updated = await allowlist.update(
      { deviceId, status: "allowed", lot, note: "n", version: 2, lotCounted: "forged" },
      1,
    );

    // Assess
    expect([unbound, removed, updated]).toStrictEqual([false, false, true]);
    expect(await allowlist.get(deviceId)).toMatchObject({ certificateId: "c", lotCounted: lot, note: "n" });
  });

  it("three concurrent runs of one certificate for each of three devices count three, and deprovision gives all back", async () => {
    // Prepare
    const { doc, lots, put, run, count } = await setup();
    await doc.send(new PutCommand({ TableName: db.names.mappings, Item: defaultMapping }));
    const iot = new FakeIot();
    const deps = {
      iot,
      allowlist: new DynamoAllowlist({ doc, table: db.names.allowlist }),
      mappings: new DynamoMappings({ doc, table: db.names.mappings }),
      lots,
      ledger: new DynamoLedger({ doc, table: db.names.ledger }),
      clock: new FakeClock(new Date()),
      settings: testSettings({ attempts: 2, baseDelayMs: 1, maxDelayMs: 2 }),
    };
    const devices = [1, 2, 3].map((n) => `dev-${run}-${n}`);
    const events = [];
    for (const deviceId of devices) {
      await put(deviceId);
      const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
      const certificateId = certificateIdOf(issued.certificatePem);
      iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
      events.push(eventFor(certificateId));
    }

    // Act
    await Promise.all(
      events.flatMap((event) => [1, 2, 3].map(() => provision(event, deps).catch((error: unknown) => error))),
    );
    const afterProvisioning = await count();
    const admin = new Admin(deps);
    for (const deviceId of devices) await admin.devices.deprovision("alice", deviceId);

    // Assess
    expect(afterProvisioning).toBe(3);
    expect(await count()).toBe(0);
  });
});
