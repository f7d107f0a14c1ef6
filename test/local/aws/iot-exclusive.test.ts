import {
  type ActionType,
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  DetachThingPrincipalCommand,
  InvalidRequestException,
  ListPrincipalThingsV2Command,
  ListThingPrincipalsV2Command,
  RegisterCertificateWithoutCACommand,
  TestAuthorizationCommand,
  type ThingPrincipalType,
} from "@aws-sdk/client-iot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa } from "./certs.ts";
import { arn, type Harness, policyDocument, startHarness } from "./helpers.ts";

let h: Harness;

async function newCertificateArn(): Promise<string> {
  const cert = await createCa({ commonName: `exclusive-${Math.random()}` });
  const out = await h.iot.send(
    new RegisterCertificateWithoutCACommand({ certificatePem: cert.pem, status: "ACTIVE" }),
  );
  return out.certificateArn ?? "";
}

const attach = (thingName: string, principal: string, exclusive: boolean) =>
  h.iot.send(
    new AttachThingPrincipalCommand({
      thingName,
      principal,
      ...(exclusive ? { thingPrincipalType: "EXCLUSIVE_THING" as const } : {}),
    }),
  );

/** The things a certificate is attached to, with the attachment type. */
async function thingsOf(principal: string) {
  const out = await h.iot.send(new ListPrincipalThingsV2Command({ principal }));
  return (out.principalThingObjects ?? []).map((o) => `${o.thingName}:${o.thingPrincipalType}`);
}

/** The decisions of TestAuthorization for one client id, one per action and resource. */
async function decisions(principal: string, clientId: string, checks: [ActionType, string][]) {
  const out = await h.iot.send(
    new TestAuthorizationCommand({
      principal,
      clientId,
      authInfos: checks.map(([actionType, resource]) => ({ actionType, resources: [resource] })),
    }),
  );
  return (out.authResults ?? []).map((r) => r.authDecision);
}

/** The built-in gateway template's statements, with a thing type and attribute condition on one topic. */
const gatewayPolicy = policyDocument([
  {
    Effect: "Allow",
    Action: "iot:Connect",
    Resource: [
      arn("client", "${iot:Connection.Thing.ThingName}"),
      arn("client", "${iot:Connection.Thing.ThingName}-*"),
    ],
  },
  {
    Effect: "Allow",
    Action: "iot:Publish",
    Resource: arn("topic", "gateways/${iot:Connection.Thing.ThingName}/*"),
  },
  {
    Effect: "Allow",
    Action: "iot:Publish",
    Resource: arn("topic", "sites/${iot:Connection.Thing.Attributes[site]}/status"),
    Condition: {
      StringEquals: { "iot:Connection.Thing.ThingTypeName": "Gateway" },
      Bool: { "iot:Connection.Thing.IsAttached": "true" },
    },
  },
]);

beforeAll(async () => {
  h = await startHarness();
  await h.iot.send(new CreateThingTypeCommand({ thingTypeName: "Gateway" }));
  await h.iot.send(new CreatePolicyCommand({ policyName: "gateway", policyDocument: gatewayPolicy }));
});
afterAll(() => h.close());

describe("exclusive thing attachments", () => {
  it("keep the certificate off every other thing until it is detached", async () => {
    // Prepare
    const cert = await newCertificateArn();
    for (const name of ["own-1", "other-1"]) await h.iot.send(new CreateThingCommand({ thingName: name }));
    await attach("own-1", cert, true);

    // Act
    const nonExclusiveElsewhere = await attach("other-1", cert, false).catch((e: unknown) => e);
    const exclusiveElsewhere = await attach("other-1", cert, true).catch((e: unknown) => e);
    await attach("own-1", cert, true);
    await attach("own-1", cert, false);
    const whileAttached = await thingsOf(cert);
    await h.iot.send(new DetachThingPrincipalCommand({ thingName: "own-1", principal: cert }));
    await attach("other-1", cert, true);

    // Assess: refused elsewhere; again on its own thing it is idempotent and stays exclusive
    expect(nonExclusiveElsewhere).toBeInstanceOf(InvalidRequestException);
    expect(exclusiveElsewhere).toBeInstanceOf(InvalidRequestException);
    expect(String(exclusiveElsewhere)).toMatch(/attached exclusively to thing own-1/);
    expect(whileAttached).toEqual(["own-1:EXCLUSIVE_THING"]);
    expect(await thingsOf(cert)).toEqual(["other-1:EXCLUSIVE_THING"]);
  });

  it("are refused while the certificate is attached to another thing, and upgrade one on the same thing", async () => {
    // Prepare
    const cert = await newCertificateArn();
    for (const name of ["shared-1", "shared-2"])
      await h.iot.send(new CreateThingCommand({ thingName: name }));
    await attach("shared-1", cert, false);

    // Act
    const refused = await attach("shared-2", cert, true).catch((e: unknown) => e);
    const before = await thingsOf(cert);
    await attach("shared-1", cert, true);

    // Assess
    expect(refused).toBeInstanceOf(InvalidRequestException);
    expect(before).toEqual(["shared-1:NON_EXCLUSIVE_THING"]);
    expect(await thingsOf(cert)).toEqual(["shared-1:EXCLUSIVE_THING"]);
  });

  it("are listed with their type both ways, and filtered by type (V2 listings)", async () => {
    // Prepare: one certificate attached exclusively, another not, to one thing
    const exclusive = await newCertificateArn();
    const plain = await newCertificateArn();
    await h.iot.send(new CreateThingCommand({ thingName: "listed-1" }));
    await attach("listed-1", exclusive, true);
    await attach("listed-1", plain, false);

    // Act
    const all = await h.iot.send(new ListThingPrincipalsV2Command({ thingName: "listed-1" }));
    const onlyExclusive = await h.iot.send(
      new ListThingPrincipalsV2Command({ thingName: "listed-1", thingPrincipalType: "EXCLUSIVE_THING" }),
    );
    const badType = await h.iot
      .send(
        new ListThingPrincipalsV2Command({
          thingName: "listed-1",
          thingPrincipalType: "OTHER" as ThingPrincipalType,
        }),
      )
      .catch((e: unknown) => e);

    // Assess
    expect(all.thingPrincipalObjects).toHaveLength(2);
    expect(all.thingPrincipalObjects).toEqual(
      expect.arrayContaining([
        { principal: exclusive, thingPrincipalType: "EXCLUSIVE_THING" },
        { principal: plain, thingPrincipalType: "NON_EXCLUSIVE_THING" },
      ]),
    );
    expect(onlyExclusive.thingPrincipalObjects).toEqual([
      { principal: exclusive, thingPrincipalType: "EXCLUSIVE_THING" },
    ]);
    expect(await thingsOf(plain)).toEqual(["listed-1:NON_EXCLUSIVE_THING"]);
    expect(badType).toBeInstanceOf(InvalidRequestException);
  });
});

describe("authorization with an exclusive attachment (TestAuthorization, as the device gateway)", () => {
  /** A certificate with the gateway policy attached to a thing `name` of type Gateway at site north. */
  async function gateway(name: string, exclusive: boolean) {
    const cert = await newCertificateArn();
    await h.iot.send(
      new CreateThingCommand({
        thingName: name,
        thingTypeName: "Gateway",
        attributePayload: { attributes: { site: "north" } },
      }),
    );
    await attach(name, cert, exclusive);
    await h.iot.send(new AttachPolicyCommand({ policyName: "gateway", target: cert }));
    return cert;
  }

  it("resolves every thing variable from the certificate's thing whatever the client id", async () => {
    // Prepare
    const cert = await gateway("gw-1", true);
    await h.iot.send(new CreateThingCommand({ thingName: "victim-1" }));

    // Act
    const asChild = await decisions(cert, "gw-1-child1", [
      ["CONNECT", arn("client", "gw-1-child1")],
      ["PUBLISH", arn("topic", "gateways/gw-1/child1/telemetry")],
      ["PUBLISH", arn("topic", "sites/north/status")],
    ]);
    const asVictim = await decisions(cert, "victim-1", [
      ["CONNECT", arn("client", "victim-1")],
      ["PUBLISH", arn("topic", "gateways/victim-1/x")],
    ]);

    // Assess: a client id naming another thing gets none of that thing's rights
    expect(asChild).toEqual(["ALLOWED", "ALLOWED", "ALLOWED"]);
    expect(asVictim).toEqual(["IMPLICIT_DENY", "IMPLICIT_DENY"]);
  });

  it("without it, resolves thing variables only when the client id is the thing name", async () => {
    // Prepare
    const cert = await gateway("gw-plain", false);

    // Act
    const asChild = await decisions(cert, "gw-plain-child1", [
      ["CONNECT", arn("client", "gw-plain-child1")],
      ["PUBLISH", arn("topic", "sites/north/status")],
    ]);
    const asThing = await decisions(cert, "gw-plain", [
      ["CONNECT", arn("client", "gw-plain")],
      ["PUBLISH", arn("topic", "sites/north/status")],
    ]);

    // Assess
    expect(asChild).toEqual(["IMPLICIT_DENY", "IMPLICIT_DENY"]);
    expect(asThing).toEqual(["ALLOWED", "ALLOWED"]);
  });

  it("applies the thing's group policies in full for the thing's client id, and only their denials for another", async () => {
    // Prepare: the certificate's policy allows everything under fleet/<thing>/; the group allows
    // fleet/<thing> and denies fleet/<thing>/blocked
    const cert = await gateway("gw-grouped", true);
    const own = policyDocument([
      {
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: arn("topic", "fleet/${iot:Connection.Thing.ThingName}/*"),
      },
    ]);
    const group = policyDocument([
      {
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: arn("topic", "fleet/${iot:Connection.Thing.ThingName}"),
      },
      {
        Effect: "Deny",
        Action: "iot:Publish",
        Resource: arn("topic", "fleet/${iot:Connection.Thing.ThingName}/blocked"),
      },
    ]);
    await h.iot.send(new CreatePolicyCommand({ policyName: "grouped-own", policyDocument: own }));
    await h.iot.send(new CreatePolicyCommand({ policyName: "grouped-group", policyDocument: group }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "grouped-own", target: cert }));
    await h.iot.send(new CreateThingGroupCommand({ thingGroupName: "gw-fleet" }));
    await h.iot.send(
      new AttachPolicyCommand({ policyName: "grouped-group", target: arn("thinggroup", "gw-fleet") }),
    );
    await h.iot.send(
      new AddThingToThingGroupCommand({ thingGroupName: "gw-fleet", thingName: "gw-grouped" }),
    );
    const checks: [ActionType, string][] = [
      ["PUBLISH", arn("topic", "fleet/gw-grouped")],
      ["PUBLISH", arn("topic", "fleet/gw-grouped/blocked")],
      ["PUBLISH", arn("topic", "fleet/gw-grouped/open")],
    ];

    // Act
    const asThing = await decisions(cert, "gw-grouped", checks);
    const asChild = await decisions(cert, "gw-grouped-child1", checks);

    // Assess
    expect(asThing).toEqual(["ALLOWED", "EXPLICIT_DENY", "ALLOWED"]);
    expect(asChild).toEqual(["IMPLICIT_DENY", "EXPLICIT_DENY", "ALLOWED"]);
  });
});
