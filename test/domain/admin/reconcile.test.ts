/** Reconcile over in-memory stores and a fake registry: provisioned devices brought to what their records select. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import type { AllowlistRecord, LedgerEntry, PolicyMapping } from "../../../domain/types.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { groupArn } from "../../support/fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const CA = "c".repeat(64);
const SENSOR_DOC = '{"Version":"2012-10-17","Statement":[]}';

type World = ReturnType<typeof makeAdminWorld>;

/** A certificate id made from a device id. */
const certificateOf = (deviceId: string) => deviceId.replace(/[^0-9a-f]/g, "0").padEnd(64, "0");

/** A provisioned device: its record bound, its certificate ACTIVE, its thing with groups, a policy attached. */
function provisioned(
  world: World,
  deviceId: string,
  options: { policyName: string; groups?: string[]; record?: Partial<AllowlistRecord>; perDevice?: boolean },
): { certificateId: string; arn: string } {
  const certificateId = certificateOf(deviceId);
  const arn = world.iot.addCertificate(certificateId, "not a pem", CA, "ACTIVE");
  world.allowlist.records.set(deviceId, {
    deviceId,
    status: "allowed",
    version: 1,
    certificateId,
    thingName: deviceId,
    policyName: options.policyName,
    provisionedAt: "2026-01-01T00:00:00.000Z",
    ...options.record,
  });
  world.iot.things.set(deviceId, { thingName: deviceId, attributes: { ...options.record?.attributes } });
  world.iot.thingPrincipals.set(deviceId, new Set([arn]));
  for (const group of options.groups ?? []) {
    const members = world.iot.thingGroups.get(group) ?? new Set<string>();
    members.add(deviceId);
    world.iot.thingGroups.set(group, members);
  }
  if (!world.iot.policies.has(options.policyName)) {
    world.iot.policies.set(options.policyName, {
      versions: [{ id: "1", document: SENSOR_DOC, createdAt: new Date(0) }],
      defaultId: "1",
    });
  }
  world.iot.policyTargets.set(
    options.policyName,
    (world.iot.policyTargets.get(options.policyName) ?? new Set()).add(arn),
  );
  world.ledger.entries.push({
    deviceId,
    at: "2026-01-01T00:00:00.000Z",
    kind: "provisioned",
    certificateId,
    caCertificateId: CA,
    policyName: options.policyName,
    ...(options.perDevice ? { perDevicePolicy: true } : {}),
  });
  return { certificateId, arn };
}

const attachedTo = (world: World, arn: string) =>
  [...world.iot.policyTargets].filter(([, targets]) => targets.has(arn)).map(([name]) => name);

const groupsOf = (world: World, thingName: string) =>
  [...world.iot.thingGroups].filter(([, members]) => members.has(thingName)).map(([name]) => name);

const mapping = (selector: string, fields: Omit<PolicyMapping, "selector" | "version">): PolicyMapping => ({
  selector,
  version: 1,
  ...fields,
});

const reconcileEntries = (world: World): LedgerEntry[] =>
  world.ledger.entries.filter((e) => e.kind === "admin" && e.change?.action === "reconcile");

describe("reconcile", () => {
  it("attaches the policy a changed mapping selects, detaches the old one and records the change", async () => {
    // Prepare: provisioned with jitr-sensor, the default mapping now says command-only
    const world = makeAdminWorld({
      mappings: [mapping("default", { policy: { template: "command-only" } })],
    });
    const { arn } = provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, {});

    // Assess
    expect(slice).toMatchObject({ dryRun: false, examined: 1, done: true });
    expect(slice.devices).toEqual([
      expect.objectContaining({
        deviceId: "dev-1",
        outcome: "changed",
        before: expect.objectContaining({ policies: ["jitr-sensor"] }),
        after: expect.objectContaining({ policies: ["jitr-command-only"] }),
      }),
    ]);
    expect(attachedTo(world, arn)).toEqual(["jitr-command-only"]);
    expect(world.iot.policies.has("jitr-sensor")).toBe(true); // shared: never deleted
    expect(world.allowlist.records.get("dev-1")?.policyName).toBe("jitr-command-only");
    expect(reconcileEntries(world)).toEqual([
      expect.objectContaining({
        actor: ACTOR,
        policyName: "jitr-command-only",
        change: expect.objectContaining({
          before: expect.objectContaining({ policies: ["jitr-sensor"] }),
          after: expect.objectContaining({ policies: ["jitr-command-only"] }),
        }),
      }),
    ]);
  });

  it("repairs drift with no mapping change: a policy detached by hand is attached again", async () => {
    // Prepare
    const world = makeAdminWorld({ mappings: [mapping("default", { policy: { template: "sensor" } })] });
    const { arn } = provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    world.iot.policyTargets.get("jitr-sensor")?.delete(arn);
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, {});

    // Assess
    expect(slice.devices.map((d) => [d.deviceId, d.outcome])).toEqual([["dev-1", "changed"]]);
    expect(slice.devices[0]?.actions).toContain("attach policy jitr-sensor");
    expect(attachedTo(world, arn)).toEqual(["jitr-sensor"]);
  });

  it("leaves a device already as its records select out of the answer, and writes nothing", async () => {
    // Prepare: the policy document in place is the rendered sensor template
    const world = makeAdminWorld({ mappings: [mapping("default", { policy: { template: "sensor" } })] });
    provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    const admin = new Admin(world.deps);
    await admin.reconcile.slice(ACTOR, {}); // brings the shared policy's document in line
    const entries = world.ledger.entries.length;

    // Act
    const again = await admin.reconcile.slice(ACTOR, {});

    // Assess
    expect(again).toEqual({ dryRun: false, examined: 1, devices: [], done: true });
    expect(world.ledger.entries).toHaveLength(entries);
  });

  it("in a dry run reports what would change and changes nothing", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [mapping("default", { policy: { template: "command-only" } })],
    });
    const { arn } = provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    const admin = new Admin(world.deps);
    const writes = () => world.iot.methods().filter((m) => !/^(describe|list|get)/.test(m));

    // Act
    const slice = await admin.reconcile.slice(ACTOR, { dryRun: true });

    // Assess
    expect(slice.devices).toEqual([
      expect.objectContaining({
        outcome: "would-change",
        actions: expect.arrayContaining(["attach policy jitr-command-only", "detach policy jitr-sensor"]),
      }),
    ]);
    expect(writes()).toEqual([]);
    expect(attachedTo(world, arn)).toEqual(["jitr-sensor"]);
    expect(reconcileEntries(world)).toEqual([]);
    expect(world.allowlist.records.get("dev-1")?.policyName).toBe("jitr-sensor");
  });

  it("brings the thing's groups, type and attributes to the mapping's: joins the new groups, leaves the old", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [
        mapping("default", {
          policy: { template: "sensor" },
          thingType: "meter",
          thingGroups: ["north"],
          attributes: { tier: "gold" },
        }),
      ],
    });
    world.iot.thingGroups.set("north", new Set());
    world.iot.thingTypes.set("meter", { deprecated: false });
    provisioned(world, "dev-1", { policyName: "jitr-sensor", groups: ["south"] });
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, {});

    // Assess
    expect(slice.devices[0]?.outcome).toBe("changed");
    expect(groupsOf(world, "dev-1")).toEqual(["north"]);
    expect(world.iot.things.get("dev-1")).toEqual({
      thingName: "dev-1",
      thingTypeName: "meter",
      attributes: { tier: "gold" },
    });
  });

  it("renames a per-device policy made under the former naming rule and deletes the old one", async () => {
    // Prepare: per-device-sensor under its former name `<prefix><template>-<deviceId>`
    const world = makeAdminWorld({
      mappings: [mapping("default", { policy: { template: "per-device-sensor" } })],
    });
    const { arn } = provisioned(world, "dev-1", {
      policyName: "jitr-per-device-sensor-dev-1",
      perDevice: true,
      record: { attributes: { site: "north" } },
    });
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, {});
    const deprovisioned = await admin.devices.deprovision(ACTOR, "dev-1");

    // Assess
    expect(slice.devices[0]?.actions).toEqual([
      "create policy jitr-per-device-sensor@dev-1",
      "attach policy jitr-per-device-sensor@dev-1",
      "detach policy jitr-per-device-sensor-dev-1",
      "delete policy jitr-per-device-sensor-dev-1",
      "record policy jitr-per-device-sensor@dev-1 on the binding",
    ]);
    expect(world.iot.policies.has("jitr-per-device-sensor-dev-1")).toBe(false);
    expect(deprovisioned.deletedPolicies).toEqual(["jitr-per-device-sensor@dev-1"]);
    expect(attachedTo(world, arn)).toEqual([]);
  });

  it("detaches a per-device policy of another device attached by hand but never deletes it", async () => {
    // Prepare
    const world = makeAdminWorld({ mappings: [mapping("default", { policy: { template: "sensor" } })] });
    const { arn } = provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    provisioned(world, "dev-2", { policyName: "jitr-per-device-sensor@dev-2", perDevice: true });
    world.iot.policyTargets.get("jitr-per-device-sensor@dev-2")?.add(arn);
    world.iot.policyTargets
      .get("jitr-per-device-sensor@dev-2")
      ?.delete(`${arn.slice(0, -64)}${certificateOf("dev-2")}`);
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, { limit: 1 });

    // Assess
    expect(slice.devices[0]?.actions).toContain("detach policy jitr-per-device-sensor@dev-2");
    expect(slice.devices[0]?.actions).not.toContain("delete policy jitr-per-device-sensor@dev-2");
    expect(world.iot.policies.has("jitr-per-device-sensor@dev-2")).toBe(true);
  });

  it("leaves a device whose records select no policy, or whose record is blocked, as it is", async () => {
    // Prepare: no mapping at all
    const world = makeAdminWorld();
    const { arn } = provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    provisioned(world, "dev-2", { policyName: "jitr-sensor", record: { status: "blocked" } });
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, {});

    // Assess
    expect(slice.devices.map((d) => [d.deviceId, d.outcome])).toEqual([
      ["dev-1", "unresolved"],
      ["dev-2", "skipped"],
    ]);
    expect(slice.devices[0]?.detail).toMatch(/^no-policy/);
    expect(attachedTo(world, arn)).toEqual(["jitr-sensor"]);
  });

  it("goes through the allowlist in slices that resume from the cursor", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [mapping("default", { policy: { template: "command-only" } })],
    });
    provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    provisioned(world, "dev-2", { policyName: "jitr-sensor" });
    world.allowlist.records.set("idle", { deviceId: "idle", status: "allowed", version: 1 });
    const admin = new Admin(world.deps);

    // Act
    const first = await admin.reconcile.slice(ACTOR, { limit: 1 });
    const second = await admin.reconcile.slice(ACTOR, {
      limit: 1,
      ...(first.cursor ? { cursor: first.cursor } : {}),
    });

    // Assess
    expect([first.done, first.devices.map((d) => d.deviceId)]).toEqual([false, ["dev-1"]]);
    expect([second.done, second.devices.map((d) => d.deviceId)]).toEqual([true, ["dev-2"]]);
  });

  it("refuses a limit outside 1..100 before reading anything", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const refused = admin.reconcile.slice(ACTOR, { limit: 101 });

    // Assess
    await expect(refused).rejects.toThrow(/limit/);
    expect(world.iot.calls).toEqual([]);
  });

  it("reports a device whose step fails, records what was done, and goes on with the next", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [mapping("default", { policy: { template: "command-only" } })],
    });
    provisioned(world, "dev-1", { policyName: "jitr-sensor" });
    const { arn } = provisioned(world, "dev-2", { policyName: "jitr-sensor" });
    world.iot.failOn("detachPolicy", () => new Error("denied"), 1);
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, {});

    // Assess
    expect(slice.devices.map((d) => [d.deviceId, d.outcome])).toEqual([
      ["dev-1", "failed"],
      ["dev-2", "changed"],
    ]);
    expect(reconcileEntries(world)[0]?.change).toMatchObject({
      actions: ["create policy jitr-command-only", "attach policy jitr-command-only"],
      error: expect.stringContaining("denied"),
    });
    expect(reconcileEntries(world)[0]?.policyName).toBeUndefined();
    expect(attachedTo(world, arn)).toEqual(["jitr-command-only"]);
  });
});

describe("reconcile: rights through thing groups", () => {
  it("moves a device from a certificate policy to a group policy: group joined, policy kept on the group, certificate policy detached", async () => {
    // Prepare: provisioned with jitr-sensor on the certificate; the mapping now grants through group `fleet`
    const world = makeAdminWorld({
      mappings: [mapping("default", { groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }] })],
    });
    world.iot.thingGroups.set("fleet", new Set());
    const { arn } = provisioned(world, "dev-1", { policyName: "jitr-old" });
    const admin = new Admin(world.deps);

    // Act
    const dry = await admin.reconcile.slice(ACTOR, { dryRun: true });
    const slice = await admin.reconcile.slice(ACTOR, {});
    const again = await admin.reconcile.slice(ACTOR, {});

    // Assess: new rights before old ones go; the group holds the policy, the certificate none
    expect(dry.devices[0]?.outcome).toBe("would-change");
    expect(slice.devices[0]).toMatchObject({
      outcome: "changed",
      actions: [
        "add thing to group fleet",
        "create policy jitr-sensor",
        "attach policy jitr-sensor to thing group fleet",
        "detach policy jitr-old",
        "record on the binding that no policy is attached to the certificate",
      ],
      after: { policies: [], thingGroups: ["fleet"], groupPolicies: ["jitr-sensor on fleet"] },
    });
    expect(attachedTo(world, arn)).toEqual([]);
    expect(world.iot.policyTargets.get("jitr-sensor")).toEqual(new Set([groupArn("fleet")]));
    expect(groupsOf(world, "dev-1")).toEqual(["fleet"]);
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("policyName");
    expect(reconcileEntries(world).at(-1)).toMatchObject({
      groupPolicies: [{ group: "fleet", policyName: "jitr-sensor" }],
    });
    expect(again.devices).toEqual([]);
  });

  it("a changed group policy document is one new version for every member; a group with no policy of its own is left unresolved", async () => {
    // Prepare: two members already in `fleet`, its policy with an older document
    const world = makeAdminWorld({
      mappings: [
        mapping("default", { groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }] }),
        mapping("device:dev-3", { groupPolicies: [{ group: "bare" }] }),
      ],
    });
    world.iot.thingGroups.set("bare", new Set());
    for (const id of ["dev-1", "dev-2"]) {
      provisioned(world, id, { policyName: "jitr-sensor", groups: ["fleet"] });
      world.iot.policyTargets.set("jitr-sensor", new Set([groupArn("fleet")]));
      const record = world.allowlist.records.get(id);
      if (record) delete record.policyName;
    }
    provisioned(world, "dev-3", { policyName: "jitr-x", groups: ["bare"] });
    const admin = new Admin(world.deps);

    // Act
    const slice = await admin.reconcile.slice(ACTOR, {});

    // Assess: the document is updated once (the first member), the second member needs nothing
    const byDevice = Object.fromEntries(slice.devices.map((d) => [d.deviceId, d]));
    expect(byDevice["dev-1"]?.actions).toEqual(["update policy jitr-sensor document"]);
    expect(byDevice["dev-2"]).toBeUndefined();
    expect(byDevice["dev-3"]).toMatchObject({
      outcome: "unresolved",
      detail: expect.stringMatching(/bare .*no policy/),
    });
    expect(world.iot.policies.get("jitr-sensor")?.versions).toHaveLength(2);
  });
});
