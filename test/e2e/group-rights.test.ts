/**
 * Rights through thing groups on the local stack, seen by real MQTT clients over TLS: a device granted only
 * through a group policy publishes on its topic; changing the group policy changes every member's rights at
 * once; explain lists the group policy with its group; TestAuthorization and the gateway agree.
 */
import {
  AttachPolicyCommand,
  CreatePolicyCommand,
  CreateThingGroupCommand,
  GetEffectivePoliciesCommand,
  ListAttachedPoliciesCommand,
  TestAuthorizationCommand,
} from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectOnce, type DeviceIdentity, publishAcknowledged } from "../../cli/device-client.ts";
import { startTestStack } from "../support/local-stack.ts";

let t: Awaited<ReturnType<typeof startTestStack>>;
const clients: MqttClient[] = [];

const CREATE = { "if-none-match": "*" };
const SELECTOR = encodeURIComponent("profile:e2e-fleet");

/** A group policy: connect as the thing, publish on `<prefix>/<thing name>`; no device placeholders. */
const fleetPolicy = (prefix: string) => ({
  document: {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: "arn:aws:iot:{{region}}:{{accountId}}:client/${iot:Connection.Thing.ThingName}",
      },
      {
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: `arn:aws:iot:{{region}}:{{accountId}}:topic/${prefix}/\${iot:Connection.Thing.ThingName}`,
      },
    ],
  },
});

beforeAll(async () => {
  t = await startTestStack();
  await t.stack.clients.iot.send(new CreateThingGroupCommand({ thingGroupName: "e2e-fleet" }));
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  await t.close();
});

const provisioned = async (deviceId: string) => {
  await t.allow(deviceId, { profile: "e2e-fleet" });
  const device = await t.device(deviceId);
  const result = await t.connect(device);
  expect(result.client?.connected).toBe(true);
  return { device, client: result.client as MqttClient };
};

/** Whether the gateway lets the device publish on `topic`: one fresh connection per question. */
async function gatewayAllows(device: DeviceIdentity, topic: string): Promise<boolean> {
  const { client } = await connectOnce(device, t.endpoint);
  if (client === undefined) return false;
  clients.push(client);
  const acknowledged = await publishAcknowledged(client, topic, "{}");
  client.end(true);
  return acknowledged;
}

describe("rights through thing groups", () => {
  it("provisions a device whose rights come only through a group policy, changes them for every member at once, and explains them", async () => {
    // Prepare: a mapping with no certificate policy, its rights in a policy the service keeps on the group
    const refused = await t.admin(
      "PUT",
      `/mappings/${SELECTOR}`,
      {
        groupPolicies: [
          {
            group: "e2e-fleet",
            policy: {
              document:
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/{{deviceId}}"}]}',
            },
          },
        ],
      },
      CREATE,
    );
    const created = await t.admin(
      "PUT",
      `/mappings/${SELECTOR}`,
      { groupPolicies: [{ group: "e2e-fleet", policy: fleetPolicy("fleet") }] },
      CREATE,
    );
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: { code: expect.any(String), details: [{ path: "groupPolicies[0].policy.document" }] },
    });
    expect(created.status).toBe(201);

    // Act: two members connect and publish; nothing is attached to their certificates
    const one = await provisioned("e2e-gr-1");
    const two = await provisioned("e2e-gr-2");

    // Assess
    expect(await publishAcknowledged(one.client, "fleet/e2e-gr-1", "{}")).toBe(true);
    expect(await publishAcknowledged(two.client, "fleet/e2e-gr-2", "{}")).toBe(true);
    const onCertificate = await t.stack.clients.iot.send(
      new ListAttachedPoliciesCommand({
        target: `arn:aws:iot:${t.stack.endpoints.region}:${t.stack.endpoints.accountId}:cert/${one.device.certificateId}`,
      }),
    );
    expect(onCertificate.policies).toEqual([]);
    const explained = await t.admin("POST", "/explain", { deviceId: "e2e-gr-1" });
    expect(explained.json).toMatchObject({
      decision: "allow",
      effectivePolicies: [
        {
          policyName: "jitr-profile+e2e-fleet-group-e2e-fleet",
          source: "group",
          group: "e2e-fleet",
          attachedTo: "e2e-fleet",
          fromMapping: true,
        },
      ],
    });
    expect(explained.json).not.toHaveProperty("policy");

    // Act: the group policy changes once (mapping update, then reconcile)
    const read = await t.admin("GET", `/mappings/${SELECTOR}`);
    const updated = await t.admin(
      "PUT",
      `/mappings/${SELECTOR}`,
      { groupPolicies: [{ group: "e2e-fleet", policy: fleetPolicy("fleet-v2") }] },
      { "if-match": String(read.json?.version) },
    );
    const reconciled = await t.admin("POST", "/reconcile?limit=100");

    // Assess: every member publishes where the new document allows, and no longer where only the old did
    expect(updated.status).toBe(200);
    expect(reconciled.status).toBe(200);
    for (const { device } of [one, two]) {
      expect(await gatewayAllows(device, `fleet-v2/${device.clientId}`)).toBe(true);
      expect(await gatewayAllows(device, `fleet/${device.clientId}`)).toBe(false);
    }
  });

  it("TestAuthorization and the gateway agree on group policies, parents included, by client id", async () => {
    // Prepare: a parent group's policy grants publishing; the device is in the child group, whose own
    // policies are the mapping's rights
    const { iot } = t.stack.clients;
    const { region, accountId } = t.stack.endpoints;
    const arn = (kind: string, id: string) => `arn:aws:iot:${region}:${accountId}:${kind}/${id}`;
    await iot.send(new CreateThingGroupCommand({ thingGroupName: "e2e-site" }));
    await iot.send(
      new CreateThingGroupCommand({ thingGroupName: "e2e-site-7", parentGroupName: "e2e-site" }),
    );
    const site = fleetPolicy("site").document;
    const rendered = JSON.stringify(site)
      .replaceAll("{{region}}", region)
      .replaceAll("{{accountId}}", accountId);
    await iot.send(new CreatePolicyCommand({ policyName: "e2e-site-policy", policyDocument: rendered }));
    await iot.send(
      new AttachPolicyCommand({ policyName: "e2e-site-policy", target: arn("thinggroup", "e2e-site") }),
    );
    await t.map({ selector: "device:e2e-gr-site", groupPolicies: [{ group: "e2e-site-7" }] });
    await t.allow("e2e-gr-site");
    const device = await t.device("e2e-gr-site");
    const first = await t.connect(device);
    first.client?.end(true);
    const principal = arn("cert", device.certificateId);
    const cases = [
      { clientId: "e2e-gr-site", topic: "site/e2e-gr-site" },
      { clientId: "e2e-gr-site", topic: "site/someone-else" },
      { clientId: "e2e-gr-site", topic: "fleet/e2e-gr-site" },
      { clientId: "not-the-thing", topic: "site/e2e-gr-site" },
    ];

    // Act
    const results = [];
    for (const { clientId, topic } of cases) {
      const tested = await iot.send(
        new TestAuthorizationCommand({
          principal,
          clientId,
          authInfos: [
            { actionType: "CONNECT", resources: [arn("client", clientId)] },
            { actionType: "PUBLISH", resources: [arn("topic", topic)] },
          ],
        }),
      );
      const api = tested.authResults?.every((r) => r.authDecision === "ALLOWED") ?? false;
      const gateway = await gatewayAllows({ ...device, clientId }, topic);
      results.push({ clientId, topic, api, gateway });
    }
    const effective = await iot.send(
      new GetEffectivePoliciesCommand({ principal, thingName: "e2e-gr-site" }),
    );
    const explained = await t.admin("POST", "/explain", { deviceId: "e2e-gr-site" });

    // Assess: the same answer from both, and only the thing's own client id gets the group's rights
    expect(results.map((r) => [r.api, r.gateway])).toEqual([
      [true, true],
      [false, false],
      [false, false],
      [false, false],
    ]);
    expect(effective.effectivePolicies?.map((p) => p.policyName)).toEqual(["e2e-site-policy"]);
    expect(explained.json).toMatchObject({
      decision: "allow",
      effectivePolicies: [
        {
          policyName: "e2e-site-policy",
          source: "group",
          group: "e2e-site-7",
          attachedTo: "e2e-site",
          fromMapping: false,
        },
      ],
    });
  });
});
