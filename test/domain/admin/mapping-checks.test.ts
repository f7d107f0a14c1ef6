/** What saving a mapping checks beyond its form: the resources it names exist, its inline policy is not broad. */
import { describe, expect, it } from "vitest";
import { broadGrants } from "../../../domain/admin/broad-policy.ts";
import { Admin, MissingReferenceError } from "../../../domain/admin/index.ts";
import { ValidationError } from "../../../domain/errors.ts";
import { policyTemplates } from "../../../policies/index.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { groupArn } from "../../support/fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const ARN = "arn:aws:iot:us-east-1:123456789012";
const allow = (Action: unknown, Resource: unknown) => ({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action, Resource }],
});

describe("a mapping naming resources that do not exist", () => {
  it("is refused (409) naming each field, and nothing is saved or recorded", async () => {
    // Prepare
    const world = makeAdminWorld();
    world.iot.thingGroups.set("present", new Set());
    const admin = new Admin(world.deps);
    const body = {
      policy: { policyName: "shared-fleet" },
      thingType: "meters",
      thingGroups: ["present", "absent"],
    };

    // Act
    const refused = await admin.mappings.put(ACTOR, "default", body, { create: true }).catch((e) => e);

    // Assess
    expect(refused).toBeInstanceOf(MissingReferenceError);
    expect(refused.issues).toEqual([
      { path: "thingType", message: "thing type meters does not exist" },
      { path: "thingGroups[1]", message: "thing group absent does not exist" },
      { path: "policy.policyName", message: "policy shared-fleet does not exist" },
    ]);
    expect(await world.mappings.get("default")).toBeUndefined();
    expect(world.ledger.entries).toEqual([]);
  });

  it("is saved with force, with a missing-reference warning for each", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const saved = await admin.mappings.put(
      ACTOR,
      "default",
      { policy: { template: "sensor" }, thingType: "meters" },
      { create: true },
      { force: true },
    );

    // Assess
    expect(saved.created).toBe(true);
    expect(saved.warnings).toEqual([
      expect.objectContaining({ code: "missing-reference", path: "thingType" }),
    ]);
  });

  it("checks a provisioning template's literal ThingTypeName, ThingGroups and PolicyName", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    const templateBody = {
      Resources: {
        thing: { Type: "AWS::IoT::Thing", Properties: { ThingTypeName: "bulbs", ThingGroups: ["kitchen"] } },
        policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "Bulbs" } },
      },
    };

    // Act
    const refused = await admin.mappings
      .put(ACTOR, "profile:bulb", { provisioningTemplate: { templateBody } }, { create: true })
      .catch((e) => e);

    // Assess
    expect(refused).toBeInstanceOf(MissingReferenceError);
    const at = "provisioningTemplate.templateBody.Resources";
    expect(refused.issues.map((i: { path: string }) => i.path)).toEqual([
      `${at}.thing.Properties.ThingTypeName`,
      `${at}.thing.Properties.ThingGroups[0]`,
      `${at}.policy.Properties.PolicyName`,
    ]);
  });

  it("the dry run warns instead of refusing", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const whatIf = await admin.mappings.whatIf("default", {
      policy: { template: "sensor" },
      thingGroups: ["g"],
    });

    // Assess
    expect(whatIf.warnings).toEqual([
      expect.objectContaining({ code: "missing-reference", path: "thingGroups[0]" }),
    ]);
  });
});

describe("a mapping whose inline policy grants broadly", () => {
  it.each([
    ["iot:* on *", allow("iot:*", "*")],
    ["* on every resource of the account", allow("*", `${ARN}:*`)],
    ["Connect for any client id", allow("iot:Connect", `${ARN}:client/*`)],
    ["Connect for the client id the device picks", allow("iot:Connect", `${ARN}:client/\${iot:ClientId}`)],
    ["Subscribe to #", allow("iot:Subscribe", `${ARN}:topicfilter/#`)],
    ["Publish on every topic", allow(["iot:Publish"], [`${ARN}:topic/*`])],
    ["Receive on + topics", allow("iot:Receive", `${ARN}:topic/+/telemetry`)],
    ["Publish on $aws/*", allow("iot:Publish", `${ARN}:topic/$aws/*`)],
    [
      "Subscribe to every device's shadow",
      allow("iot:Subscribe", `${ARN}:topicfilter/$aws/things/+/shadow/#`),
    ],
    ["an action pattern reaching Publish", allow("iot:Pub*", "*")],
    [
      "NotAction",
      { Version: "2012-10-17", Statement: [{ Effect: "Allow", NotAction: "iot:Connect", Resource: "*" }] },
    ],
  ])("refuses %s (400 naming the statement) unless allowBroadPolicy", async (_name, document) => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const refused = await admin.mappings
      .put(ACTOR, "default", { policy: { document } }, { create: true })
      .catch((e) => e);
    const allowed = await admin.mappings.put(
      ACTOR,
      "default",
      { policy: { document } },
      { create: true },
      { allowBroadPolicy: true },
    );

    // Assess
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused.issues[0].path).toMatch(/^policy\.document\.Statement/);
    expect(allowed.warnings[0]).toMatchObject({ code: "broad-policy" });
  });

  it.each([
    [
      "the sensor shape",
      allow("iot:Publish", `${ARN}:topic/devices/\${iot:Connection.Thing.ThingName}/telemetry`),
    ],
    ["its own client id", allow("iot:Connect", `${ARN}:client/\${iot:Connection.Thing.ThingName}`)],
    [
      "its own shadow",
      allow("iot:Subscribe", `${ARN}:topicfilter/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/*`),
    ],
    ["a per-device placeholder", allow("iot:Publish", `${ARN}:topic/$aws/things/{{deviceId}}/jobs/*`)],
    ["a shared command topic", allow("iot:Receive", `${ARN}:topic/fleet/announcements`)],
    ["a broad Deny", { Statement: [{ Effect: "Deny", Action: "iot:*", Resource: "*" }] }],
  ])("accepts %s without a flag", (_name, document) => {
    // Act
    const found = broadGrants(document, "policy.document");

    // Assess
    expect(found).toEqual([]);
  });

  it.each(Object.keys(policyTemplates))("the built-in template %s grants nothing broad", (name) => {
    // Act
    const found = broadGrants(policyTemplates[name]?.document, "policy.document");

    // Assess
    expect(policyTemplates[name]).toBeDefined();
    expect(found).toEqual([]);
  });

  it("matches action patterns in linear time, whatever wildcards they hold", () => {
    // Prepare
    const pattern = `${"*".repeat(1000)}x`;
    const started = Date.now();

    // Act
    const found = broadGrants(allow(pattern, `${ARN}:client/*`), "policy.document");

    // Assess
    expect(found).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe("a mapping granting rights through thing groups", () => {
  it("checks each group, each named policy and each group whose own policies are the rights (409 naming the field)", async () => {
    // Prepare: `fleet` exists and holds a policy; `bare` exists with none; `absent` does not exist
    const world = makeAdminWorld();
    world.iot.thingGroups.set("fleet", new Set());
    world.iot.thingGroups.set("bare", new Set());
    world.iot.policies.set("FleetPolicy", {
      versions: [{ id: "1", document: "{}", createdAt: new Date(0) }],
      defaultId: "1",
    });
    await world.iot.attachPolicy("FleetPolicy", groupArn("fleet"));
    const admin = new Admin(world.deps);
    const body = {
      groupPolicies: [
        { group: "fleet" },
        { group: "bare" },
        { group: "absent", policy: { policyName: "OpsPolicy" } },
      ],
    };

    // Act
    const refused = await admin.mappings.put(ACTOR, "default", body, { create: true }).catch((e) => e);
    const fine = await admin.mappings.put(
      ACTOR,
      "profile:ok",
      { groupPolicies: [{ group: "fleet" }] },
      { create: true },
    );

    // Assess
    expect(refused).toBeInstanceOf(MissingReferenceError);
    expect(refused.issues).toEqual([
      {
        path: "groupPolicies[1]",
        message: "thing group bare does not exist or has no policy attached (to it or a parent group)",
      },
      { path: "groupPolicies[2].group", message: "thing group absent does not exist" },
      { path: "groupPolicies[2].policy.policyName", message: "policy OpsPolicy does not exist" },
    ]);
    expect(fine.warnings ?? []).toEqual([]);
  });

  it("refuses a broad group policy document unless allowBroadPolicy, naming the entry", async () => {
    const world = makeAdminWorld();
    world.iot.thingGroups.set("fleet", new Set());
    const admin = new Admin(world.deps);
    const body = { groupPolicies: [{ group: "fleet", policy: { document: allow("iot:*", "*") } }] };
    const refused = await admin.mappings.put(ACTOR, "default", body, { create: true }).catch((e) => e);
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused.issues[0].path).toMatch(/^groupPolicies\[0\]\.policy\.document\.Statement/);
  });
});
