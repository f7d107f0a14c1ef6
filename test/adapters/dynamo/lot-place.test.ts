/**
 * The lot place (invariant I6) against the local DynamoDB: the transactions that take and give back a
 * place and the binding writes as a real expression parser evaluates them, and concurrent runs over the
 * adapters.
 */
import { DeleteCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
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
  const lots = new DynamoLots({ doc, table: db.names.lots, recordsTable: db.names.allowlist });
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
  it("a place is taken once, only for the certificate bound and under the quota: the mark and the count together", async () => {
    // Prepare
    const { allowlist, lots, lot, put, run, count } = await setup(1);
    const first = `first-${run}`;
    const second = `second-${run}`;
    await put(first, { certificateId: "c1" });
    await put(second, { certificateId: "c2" });

    // Act
    const wrongCertificate = await lots.takePlace({ deviceId: first, certificateId: "c2", lot });
    const countAfterWrong = await count();
    const taken = await lots.takePlace({ deviceId: first, certificateId: "c1", lot });
    const again = await lots.takePlace({ deviceId: first, certificateId: "c1", lot });
    const full = await lots.takePlace({ deviceId: second, certificateId: "c2", lot });

    // Assess
    expect([wrongCertificate, taken, again, full]).toStrictEqual(["lost", "counted", "lost", "full"]);
    expect(countAfterWrong).toBe(0);
    expect(await count()).toBe(1);
    expect((await allowlist.get(first))?.lotCounted).toBe(lot);
    expect(await allowlist.get(second)).not.toHaveProperty("lotCounted");
  });

  it("a place is given back once, against the record as read; over an earlier version's claim; the mark alone when the lot is gone", async () => {
    // Prepare
    const { doc, allowlist, lots, lot, put, run, count } = await setup();
    const device = `dev-${run}`;
    const legacy = `legacy-${run}`;
    await put(device, { certificateId: "c" });
    await put(legacy, { certificateId: "c" });
    expect(await lots.takePlace({ deviceId: device, certificateId: "c", lot })).toBe("counted");
    expect(await lots.takePlace({ deviceId: legacy, certificateId: "c", lot })).toBe("counted");
    await doc.send(
      new UpdateCommand({
        TableName: db.names.allowlist,
        Key: { deviceId: legacy },
        UpdateExpression: "SET lotReleaseStartedAt = :t",
        ExpressionAttributeValues: { ":t": "t0" },
      }),
    );
    const place = { deviceId: device, lot, boundTo: "c", releaseClaim: undefined };

    // Act
    const unbound = await lots.givePlaceBack({ ...place, boundTo: undefined });
    const claimed = await lots.givePlaceBack({ ...place, releaseClaim: "t0" });
    const countBefore = await count();
    const given = await lots.givePlaceBack(place);
    const twice = await lots.givePlaceBack(place);
    const overClaim = await lots.givePlaceBack({ ...place, deviceId: legacy, releaseClaim: "t0" });

    // Assess
    expect([unbound, claimed, given, twice, overClaim]).toStrictEqual([false, false, true, false, true]);
    expect(countBefore).toBe(2);
    expect(await count()).toBe(0);
    for (const deviceId of [device, legacy]) {
      const record = await allowlist.get(deviceId);
      expect(record).not.toHaveProperty("lotCounted");
      expect(record).not.toHaveProperty("lotReleaseStartedAt");
      expect(record?.certificateId).toBe("c");
    }
  });

  it("a place in a lot that is gone is given back as the mark alone", async () => {
    // Prepare
    const { doc, allowlist, lots, lot, put, run } = await setup();
    const deviceId = `dev-${run}`;
    await put(deviceId, { certificateId: "c" });
    expect(await lots.takePlace({ deviceId, certificateId: "c", lot })).toBe("counted");
    await doc.send(new DeleteCommand({ TableName: db.names.lots, Key: { lot } }));

    // Act
    const given = await lots.givePlaceBack({ deviceId, lot, boundTo: "c", releaseClaim: undefined });

    // Assess
    expect(given).toBe(true);
    expect(await allowlist.get(deviceId)).not.toHaveProperty("lotCounted");
    expect(await lots.get(lot)).toBeUndefined();
  });

  it("60 concurrent takes (30 devices, each twice) for 20 places, with admin writes to the lot between: 20 counted, 20 marked", async () => {
    // Prepare
    const { doc, allowlist, lots, lot, put, run, count } = await setup(20);
    const devices = Array.from({ length: 30 }, (_, i) => `dev-${run}-${i}`);
    for (const deviceId of devices) await put(deviceId, { certificateId: `c-${deviceId}` });
    const notes = Array.from({ length: 10 }, (_, i) =>
      doc.send(
        new UpdateCommand({
          TableName: db.names.lots,
          Key: { lot },
          UpdateExpression: "SET note = :n",
          ExpressionAttributeValues: { ":n": `note ${i}` },
        }),
      ),
    );

    // Act
    const outcomes = await Promise.all([
      ...devices.flatMap((deviceId) =>
        [1, 2].map(() => lots.takePlace({ deviceId, certificateId: `c-${deviceId}`, lot })),
      ),
      ...notes,
    ]);

    // Assess
    expect(outcomes.filter((o) => o === "counted")).toHaveLength(20);
    expect(await count()).toBe(20);
    const marked = [];
    for (const deviceId of devices)
      if ((await allowlist.get(deviceId))?.lotCounted === lot) marked.push(deviceId);
    expect(marked).toHaveLength(20);
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
