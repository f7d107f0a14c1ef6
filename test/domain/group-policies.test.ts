import { describe, expect, it } from "vitest";
import { validateMapping } from "../../domain/admin/validation.ts";
import { type DecisionInput, decide, referencesOf } from "../../domain/decide.ts";
import { ProvisioningError } from "../../domain/errors.ts";
import { execute, POLICY_VERSION_LIMIT } from "../../domain/execute.ts";
import { KnownPolicies } from "../../domain/known-policies.ts";
import { plan } from "../../domain/plan.ts";
import {
  groupPoliciesOf,
  readReferences,
  referenceKey,
  unusableReferences,
} from "../../domain/references.ts";
import type { CertificateFacts, PolicyMapping } from "../../domain/types.ts";
import { FakeClock, FakeIot, groupArn } from "../support/fakes.ts";
import { allowed, eventFor } from "../support/world.ts";

/*
 * Rights through thing groups (README "Rights through thing groups"): a mapping's `groupPolicies` grant
 * rights through policies attached to thing groups the device's thing joins; the certificate's policy is
 * optional then. Pure decision and plan, and execution against the in-memory registry.
 */

const CERT = "a".repeat(64);
const ARN = `arn:aws:iot:eu-west-1:123456789012:cert/${CERT}`;
const settings = { region: "eu-west-1", accountId: "123456789012", policyPrefix: "jitr-" };
const facts: CertificateFacts = {
  fingerprint: CERT,
  subject: "CN=dev-1",
  issuer: "CN=Fleet CA",
  subjectAttributes: { CN: "dev-1" },
  commonName: "dev-1",
  sanUris: [],
  sanDnsNames: [],
  notBefore: new Date("2026-01-01T00:00:00Z"),
  notAfter: new Date("2027-01-01T00:00:00Z"),
};

const fleetDocument = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: "arn:aws:iot:{{region}}:{{accountId}}:topic/fleet/${iot:Connection.Thing.ThingName}",
    },
  ],
};

const groupOnly: PolicyMapping = {
  selector: "default",
  groupPolicies: [{ group: "fleet", policy: { document: fleetDocument } }],
  version: 3,
};

const input = (mapping: PolicyMapping, over: Partial<DecisionInput> = {}): DecisionInput => ({
  event: eventFor(CERT),
  certificate: facts,
  deviceId: "dev-1",
  record: allowed("dev-1"),
  boundCertificate: undefined,
  lot: undefined,
  mappings: [mapping],
  now: new Date("2026-06-01T12:00:00Z"),
  settings,
  ...over,
});

function allowOf(mapping: PolicyMapping) {
  const decision = decide(input(mapping));
  if (decision.outcome !== "allow")
    throw new Error(`expected allow, got ${decision.reason}: ${decision.detail}`);
  return decision;
}

describe("decide: rights through thing groups", () => {
  it("allows a mapping whose only rights come through a group policy, with no certificate policy", () => {
    // Act
    const decision = allowOf(groupOnly);
    // Assess
    expect(decision.policy).toBeUndefined();
    expect(decision.thing.thingGroups).toEqual(["fleet"]);
    expect(decision.groupPolicies).toEqual([
      {
        group: "fleet",
        policy: {
          policyName: "jitr-default-group-fleet",
          document: JSON.stringify(fleetDocument)
            .replace("{{region}}", "eu-west-1")
            .replace("{{accountId}}", "123456789012"),
          perDevice: false,
        },
      },
    ]);
  });

  it("a group's own policies count as rights: the group is a reference that must hold a policy (row 11b)", () => {
    // Prepare
    const mapping: PolicyMapping = { selector: "default", groupPolicies: [{ group: "site-7" }], version: 1 };
    const decision = allowOf(mapping);
    const refs = referencesOf(decision);
    // Act
    const denied = decide(
      input(mapping, {
        references: new Map([[referenceKey({ kind: "groupPolicies", name: "site-7" }), "missing"]]),
      }),
    );
    // Assess
    expect(decision.groupPolicies).toEqual([{ group: "site-7", policy: undefined }]);
    expect(refs).toEqual(
      expect.arrayContaining([
        { kind: "thingGroup", name: "site-7" },
        { kind: "groupPolicies", name: "site-7" },
      ]),
    );
    expect(denied).toMatchObject({
      outcome: "deny",
      reason: "missing-reference",
      certificateStatus: "INACTIVE",
    });
    expect(denied.outcome === "deny" && denied.detail).toMatch(/thing group site-7 .*no policy attached/);
  });

  it("row 10 still denies no-policy when the effective policy set is empty", () => {
    // a mapping with thing groups but no policy for the certificate nor any group policy
    const decision = decide(
      input({ selector: "default", thingGroups: ["fleet"], groupPolicies: [], version: 1 }),
    );
    expect(decision).toMatchObject({ outcome: "deny", reason: "no-policy", certificateStatus: "INACTIVE" });
  });

  it("denies no-policy when a group policy would need device placeholders (shared by every member)", () => {
    // Prepare: stored before validation existed, or written straight to the table
    const mapping: PolicyMapping = {
      selector: "default",
      groupPolicies: [{ group: "fleet", policy: { template: "per-device-sensor" } }],
      version: 1,
    };
    // Act
    const decision = decide(input(mapping));
    // Assess
    expect(decision).toMatchObject({ outcome: "deny", reason: "no-policy" });
    expect(decision.outcome === "deny" && decision.detail).toMatch(/groupPolicies\[0\].*\{\{deviceId\}\}/);
  });

  it("keeps the certificate policy beside group policies, and names an existing group policy as a reference", () => {
    const decision = allowOf({
      selector: "default",
      policy: { template: "sensor" },
      groupPolicies: [{ group: "ops", policy: { policyName: "OpsPolicy" } }],
      version: 1,
    });
    expect(decision.policy?.policyName).toBe("jitr-sensor");
    expect(referencesOf(decision)).toEqual(
      expect.arrayContaining([
        { kind: "thingGroup", name: "ops" },
        { kind: "policy", name: "OpsPolicy" },
      ]),
    );
  });
});

describe("plan and execute: group policies", () => {
  function setup(mapping: PolicyMapping = groupOnly) {
    const iot = new FakeIot();
    iot.addCertificate(CERT, "pem", "c".repeat(64));
    iot.thingGroups.set("fleet", new Set());
    const clock = new FakeClock(new Date("2026-06-01T12:00:00Z"));
    const thePlan = plan(allowOf(mapping), { certificateId: CERT, certificateArn: ARN });
    const deps = { iot, clock, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } };
    return { iot, thePlan, deps };
  }

  it("ensures the group policy and attaches it to the group before the certificate is activated; none on the certificate", async () => {
    // Prepare
    const { iot, thePlan, deps } = setup();
    // Act
    await execute(thePlan, deps);
    // Assess
    expect(thePlan.steps.map((s) => s.kind)).toEqual([
      "createThing",
      "addThingToGroup",
      "ensurePolicy",
      "attachGroupPolicy",
      "attachThing",
      "activateCertificate",
    ]);
    expect(iot.policyTargets.get("jitr-default-group-fleet")).toEqual(new Set([groupArn("fleet")]));
    expect(await iot.listAttachedPolicies(ARN)).toEqual([]);
    expect(iot.thingGroups.get("fleet")?.has("dev-1")).toBe(true);
    expect(iot.statusOf(CERT)).toBe("ACTIVE");
  });

  it("a warm instance attaches a group policy once for a burst of members, not once per device", async () => {
    // Prepare
    const { iot, thePlan, deps } = setup();
    const knownPolicies = new KnownPolicies(deps.clock);
    await execute(thePlan, { ...deps, knownPolicies });
    const attachesBefore = iot.methods().filter((m) => m === "attachPolicy").length;
    // Act: the next member (same plan steps, another certificate)
    const next = "b".repeat(64);
    iot.addCertificate(next, "pem", "c".repeat(64));
    const nextPlan = { ...thePlan, certificateId: next, certificateArn: ARN.replace(CERT, next) };
    iot.things.delete("dev-1");
    await execute(nextPlan, { ...deps, knownPolicies });
    // Assess
    expect(attachesBefore).toBe(1);
    expect(iot.methods().filter((m) => m === "attachPolicy")).toHaveLength(1);
    expect(iot.methods().filter((m) => m === "describeThingGroup")).toHaveLength(1);
    expect(iot.statusOf(next)).toBe("ACTIVE");
  });

  it("a changed group policy document becomes a new default version, within AWS's 5-version limit", async () => {
    // Prepare: the policy exists with the limit of versions and another document
    const { iot, thePlan, deps } = setup();
    const versions = Array.from({ length: POLICY_VERSION_LIMIT }, (_, i) => ({
      id: String(i + 1),
      document: `{"Version":"2012-10-17","Statement":[],"v":${i}}`,
      createdAt: new Date(1_000 * (i + 1)),
    }));
    iot.policies.set("jitr-default-group-fleet", { versions, defaultId: String(POLICY_VERSION_LIMIT) });
    // Act
    await execute(thePlan, deps);
    // Assess
    const policy = await iot.getPolicy("jitr-default-group-fleet");
    expect(JSON.parse(policy?.document ?? "{}")).toMatchObject({ Statement: [{ Action: "iot:Publish" }] });
    expect((await iot.listPolicyVersions("jitr-default-group-fleet")).length).toBe(POLICY_VERSION_LIMIT);
  });

  it("a group that does not exist fails the run clearly and leaves the certificate not ACTIVE", async () => {
    // Prepare
    const { iot, thePlan, deps } = setup();
    iot.thingGroups.delete("fleet");
    // Act
    const error = await execute(thePlan, deps).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProvisioningError);
    expect(iot.statusOf(CERT)).toBe("PENDING_ACTIVATION");
  });
});

describe("references: a group's own policies", () => {
  it("reads the policies attached to a group and its parents, nearest first", async () => {
    // Prepare
    const iot = new FakeIot();
    iot.thingGroups.set("site-7", new Set());
    iot.thingGroups.set("fleet", new Set());
    iot.groupParents.set("site-7", "fleet");
    iot.policies.set("FleetPolicy", {
      versions: [{ id: "1", document: "{}", createdAt: new Date(0) }],
      defaultId: "1",
    });
    await iot.attachPolicy("FleetPolicy", groupArn("fleet"));
    iot.thingGroups.set("empty", new Set());
    // Act
    const found = await groupPoliciesOf(iot, "site-7");
    const facts = await readReferences(
      [
        { kind: "groupPolicies", name: "site-7" },
        { kind: "groupPolicies", name: "empty" },
        { kind: "groupPolicies", name: "absent" },
      ],
      iot,
    );
    // Assess
    expect(found).toEqual([{ policyName: "FleetPolicy", attachedTo: "fleet" }]);
    expect(
      unusableReferences(
        [
          { kind: "groupPolicies", name: "site-7" },
          { kind: "groupPolicies", name: "empty" },
          { kind: "groupPolicies", name: "absent" },
        ],
        facts,
      ).map((u) => u.reference.name),
    ).toEqual(["empty", "absent"]);
  });
});

describe("validation: groupPolicies", () => {
  const validate = (body: unknown) => validateMapping(body, "profile:fleet", settings);

  it("accepts a mapping whose rights come only through groups", () => {
    const result = validate({
      groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }, { group: "ops" }],
    });
    expect(result).toEqual({
      ok: true,
      value: {
        selector: "profile:fleet",
        groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }, { group: "ops" }],
      },
    });
  });

  it("refuses device placeholders in a group policy, naming the field", () => {
    const byDocument = validate({
      groupPolicies: [
        {
          group: "fleet",
          policy: {
            document: {
              Version: "2012-10-17",
              Statement: [
                { Effect: "Allow", Action: "iot:Publish", Resource: "arn:aws:iot:*:*:topic/{{deviceId}}/x" },
              ],
            },
          },
        },
      ],
    });
    const byTemplate = validate({
      groupPolicies: [{ group: "fleet", policy: { template: "per-device-sensor" } }],
    });
    const byAttribute = validate({
      groupPolicies: [
        {
          group: "fleet",
          policy: {
            document:
              '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"{{attributes.site}}"}]}',
          },
        },
      ],
    });
    expect(byDocument).toMatchObject({ ok: false, issues: [{ path: "groupPolicies[0].policy.document" }] });
    expect(byTemplate).toMatchObject({ ok: false, issues: [{ path: "groupPolicies[0].policy.template" }] });
    expect(byAttribute).toMatchObject({ ok: false, issues: [{ path: "groupPolicies[0].policy.document" }] });
    expect(!byAttribute.ok && byAttribute.issues[0]?.message).toMatch(/\{\{attributes\.site\}\}/);
  });

  it("refuses a malformed entry, an unknown field, and a mapping granting nothing", () => {
    expect(validate({ groupPolicies: "fleet" })).toMatchObject({
      ok: false,
      issues: [{ path: "groupPolicies" }],
    });
    expect(validate({ groupPolicies: [{ group: "bad group" }] })).toMatchObject({
      ok: false,
      issues: [{ path: "groupPolicies[0].group" }],
    });
    expect(validate({ groupPolicies: [{ group: "fleet", extra: 1 }] })).toMatchObject({
      ok: false,
      issues: [{ path: "groupPolicies[0].extra" }],
    });
    expect(validate({ groupPolicies: [] })).toMatchObject({ ok: false, issues: [{ path: "policy" }] });
    const many = Array.from({ length: 6 }, (_, i) => ({ group: `g${i}` }));
    expect(validate({ thingGroups: ["a", "b", "c", "d", "e"], groupPolicies: many })).toMatchObject({
      ok: false,
      issues: [{ path: "groupPolicies" }],
    });
  });
});
