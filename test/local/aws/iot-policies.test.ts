import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  DeleteConflictException,
  DeletePolicyCommand,
  DeletePolicyVersionCommand,
  DetachPolicyCommand,
  GetEffectivePoliciesCommand,
  GetPolicyCommand,
  InvalidRequestException,
  LimitExceededException,
  ListAttachedPoliciesCommand,
  ListPolicyVersionsCommand,
  ListTargetsForPolicyCommand,
  MalformedPolicyException,
  RegisterCertificateWithoutCACommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  SetDefaultPolicyVersionCommand,
  TestAuthorizationCommand,
  VersionsLimitExceededException,
} from "@aws-sdk/client-iot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa } from "./certs.ts";
import { allowAll, arn, type Harness, policyDocument, startHarness } from "./helpers.ts";

let h: Harness;

async function newCertificateArn(commonName = `cert-${Math.random()}`): Promise<string> {
  const cert = await createCa({ commonName });
  const out = await h.iot.send(
    new RegisterCertificateWithoutCACommand({ certificatePem: cert.pem, status: "ACTIVE" }),
  );
  return out.certificateArn ?? "";
}

const connectOnly = policyDocument([{ Effect: "Allow", Action: "iot:Connect", Resource: "*" }]);

beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

describe("policies", () => {
  it("creates, gets, and refuses an existing name even with the same document", async () => {
    const out = await h.iot.send(new CreatePolicyCommand({ policyName: "p1", policyDocument: allowAll }));
    expect(out).toMatchObject({ policyName: "p1", policyArn: arn("policy", "p1"), policyVersionId: "1" });
    const err = await h.iot
      .send(new CreatePolicyCommand({ policyName: "p1", policyDocument: allowAll }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceAlreadyExistsException);
    const got = await h.iot.send(new GetPolicyCommand({ policyName: "p1" }));
    expect(got.policyDocument).toBe(allowAll);
    expect(got.defaultVersionId).toBe("1");
    expect(got.creationDate).toBeInstanceOf(Date);
    await expect(h.iot.send(new GetPolicyCommand({ policyName: "nope" }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it("validates names and documents", async () => {
    await expect(
      h.iot.send(new CreatePolicyCommand({ policyName: "bad name!", policyDocument: allowAll })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    for (const policyDocument of [
      "{not json",
      JSON.stringify({ Statement: [] }),
      JSON.stringify({ Version: "2012-10-17" }),
      JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "iot:*" }] }),
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "iot:Publish", Resource: "x".repeat(2100) }],
      }),
    ]) {
      await expect(
        h.iot.send(new CreatePolicyCommand({ policyName: "malformed", policyDocument })),
      ).rejects.toBeInstanceOf(MalformedPolicyException);
    }
    await expect(h.iot.send(new GetPolicyCommand({ policyName: "malformed" }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it("manages versions: 5 max, default protected, set default", async () => {
    await h.iot.send(new CreatePolicyCommand({ policyName: "versioned", policyDocument: connectOnly }));
    for (let i = 2; i <= 5; i++) {
      const v = await h.iot.send(
        new CreatePolicyVersionCommand({
          policyName: "versioned",
          policyDocument: allowAll,
          setAsDefault: i === 3,
        }),
      );
      expect(v.policyVersionId).toBe(String(i));
      expect(v.isDefaultVersion).toBe(i === 3);
    }
    await expect(
      h.iot.send(new CreatePolicyVersionCommand({ policyName: "versioned", policyDocument: allowAll })),
    ).rejects.toBeInstanceOf(VersionsLimitExceededException);
    let versions = await h.iot.send(new ListPolicyVersionsCommand({ policyName: "versioned" }));
    expect(versions.policyVersions?.map((v) => [v.versionId, v.isDefaultVersion])).toEqual([
      ["5", false],
      ["4", false],
      ["3", true],
      ["2", false],
      ["1", false],
    ]);
    await expect(
      h.iot.send(new DeletePolicyVersionCommand({ policyName: "versioned", policyVersionId: "3" })),
    ).rejects.toBeInstanceOf(DeleteConflictException);
    await h.iot.send(new DeletePolicyVersionCommand({ policyName: "versioned", policyVersionId: "1" }));
    await expect(
      h.iot.send(new DeletePolicyVersionCommand({ policyName: "versioned", policyVersionId: "1" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    // Version ids are never reused.
    const v6 = await h.iot.send(
      new CreatePolicyVersionCommand({ policyName: "versioned", policyDocument: connectOnly }),
    );
    expect(v6.policyVersionId).toBe("6");
    await h.iot.send(new SetDefaultPolicyVersionCommand({ policyName: "versioned", policyVersionId: "6" }));
    expect((await h.iot.send(new GetPolicyCommand({ policyName: "versioned" }))).policyDocument).toBe(
      connectOnly,
    );
    await expect(
      h.iot.send(new SetDefaultPolicyVersionCommand({ policyName: "versioned", policyVersionId: "42" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);

    await expect(h.iot.send(new DeletePolicyCommand({ policyName: "versioned" }))).rejects.toBeInstanceOf(
      DeleteConflictException,
    );
    for (const id of ["2", "3", "4", "5"])
      await h.iot.send(new DeletePolicyVersionCommand({ policyName: "versioned", policyVersionId: id }));
    versions = await h.iot.send(new ListPolicyVersionsCommand({ policyName: "versioned" }));
    expect(versions.policyVersions?.map((v) => v.versionId)).toEqual(["6"]);
    await h.iot.send(new DeletePolicyCommand({ policyName: "versioned" }));
    await expect(h.iot.send(new GetPolicyCommand({ policyName: "versioned" }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it("attaches idempotently, lists both ways, refuses deleting an attached policy", async () => {
    await h.iot.send(new CreatePolicyCommand({ policyName: "attached", policyDocument: allowAll }));
    const certArn = await newCertificateArn();
    await h.iot.send(new AttachPolicyCommand({ policyName: "attached", target: certArn }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "attached", target: certArn }));
    const listed = await h.iot.send(new ListAttachedPoliciesCommand({ target: certArn }));
    expect(listed.policies).toEqual([{ policyName: "attached", policyArn: arn("policy", "attached") }]);
    const targets = await h.iot.send(new ListTargetsForPolicyCommand({ policyName: "attached" }));
    expect(targets.targets).toEqual([certArn]);
    await expect(h.iot.send(new DeletePolicyCommand({ policyName: "attached" }))).rejects.toBeInstanceOf(
      DeleteConflictException,
    );
    expect((await h.iot.send(new GetPolicyCommand({ policyName: "attached" }))).policyName).toBe("attached");
    await h.iot.send(new DetachPolicyCommand({ policyName: "attached", target: certArn }));
    expect((await h.iot.send(new ListAttachedPoliciesCommand({ target: certArn }))).policies).toEqual([]);
    await h.iot.send(new DeletePolicyCommand({ policyName: "attached" }));
  });

  it("attaches to thing groups and refuses unknown policies and targets", async () => {
    await h.iot.send(new CreatePolicyCommand({ policyName: "group-policy", policyDocument: allowAll }));
    const group = await h.iot.send(new CreateThingGroupCommand({ thingGroupName: "policy-group" }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "group-policy", target: group.thingGroupArn }));
    expect(
      (await h.iot.send(new ListTargetsForPolicyCommand({ policyName: "group-policy" }))).targets,
    ).toEqual([group.thingGroupArn]);
    const certArn = await newCertificateArn();
    await expect(
      h.iot.send(new AttachPolicyCommand({ policyName: "no-policy", target: certArn })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(
      h.iot.send(
        new AttachPolicyCommand({ policyName: "group-policy", target: arn("cert", "b".repeat(64)) }),
      ),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("limits a certificate to 10 attached policies", async () => {
    const certArn = await newCertificateArn();
    for (let i = 0; i < 11; i++)
      await h.iot.send(new CreatePolicyCommand({ policyName: `limit-${i}`, policyDocument: allowAll }));
    for (let i = 0; i < 10; i++)
      await h.iot.send(new AttachPolicyCommand({ policyName: `limit-${i}`, target: certArn }));
    await expect(
      h.iot.send(new AttachPolicyCommand({ policyName: "limit-10", target: certArn })),
    ).rejects.toBeInstanceOf(LimitExceededException);
    // Re-attaching one already attached stays fine at the limit.
    await h.iot.send(new AttachPolicyCommand({ policyName: "limit-0", target: certArn }));
    const page1 = await h.iot.send(new ListAttachedPoliciesCommand({ target: certArn, pageSize: 6 }));
    const page2 = await h.iot.send(
      new ListAttachedPoliciesCommand({ target: certArn, pageSize: 6, marker: page1.nextMarker }),
    );
    expect(page1.policies).toHaveLength(6);
    expect(page2.policies).toHaveLength(4);
    expect(page2.nextMarker).toBeUndefined();
    expect((await h.iot.send(new ListTargetsForPolicyCommand({ policyName: "limit-10" }))).targets).toEqual(
      [],
    );
  });
});

describe("TestAuthorization", () => {
  it("evaluates the principal's policies with thing variables resolved through the client id", async () => {
    const certArn = await newCertificateArn("device-cn");
    await h.iot.send(new CreateThingCommand({ thingName: "auth-thing" }));
    await h.iot.send(new AttachThingPrincipalCommand({ thingName: "auth-thing", principal: certArn }));
    const own = policyDocument([
      {
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}",
      },
      {
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: "arn:aws:iot:us-east-1:123456789012:topic/d/${iot:Certificate.Subject.CommonName}/*",
      },
    ]);
    const deny = policyDocument([
      {
        Effect: "Deny",
        Action: "iot:Publish",
        Resource: "arn:aws:iot:us-east-1:123456789012:topic/d/*/admin",
      },
    ]);
    await h.iot.send(new CreatePolicyCommand({ policyName: "auth-own", policyDocument: own }));
    await h.iot.send(new CreatePolicyCommand({ policyName: "auth-deny", policyDocument: deny }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "auth-own", target: certArn }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "auth-deny", target: certArn }));

    const topic = (t: string) => `arn:aws:iot:us-east-1:123456789012:topic/${t}`;
    const out = await h.iot.send(
      new TestAuthorizationCommand({
        principal: certArn,
        clientId: "auth-thing",
        authInfos: [
          { actionType: "CONNECT", resources: ["arn:aws:iot:us-east-1:123456789012:client/auth-thing"] },
          { actionType: "PUBLISH", resources: [topic("d/device-cn/telemetry")] },
          { actionType: "PUBLISH", resources: [topic("d/device-cn/admin")] },
          { actionType: "SUBSCRIBE", resources: ["arn:aws:iot:us-east-1:123456789012:topicfilter/x"] },
        ],
      }),
    );
    const results = out.authResults ?? [];
    expect(results.map((r) => r.authDecision)).toEqual([
      "ALLOWED",
      "ALLOWED",
      "EXPLICIT_DENY",
      "IMPLICIT_DENY",
    ]);
    expect(results[0]?.allowed?.policies?.map((p) => p.policyName)).toEqual(["auth-own"]);
    expect(results[2]?.denied?.explicitDeny?.policies?.map((p) => p.policyName)).toEqual(["auth-deny"]);
    expect(results[3]?.denied?.implicitDeny?.policies?.map((p) => p.policyName).sort()).toEqual([
      "auth-deny",
      "auth-own",
    ]);

    // A client id that is not an attached thing leaves the thing variable unresolved.
    const other = await h.iot.send(
      new TestAuthorizationCommand({
        principal: certArn,
        clientId: "someone-else",
        authInfos: [
          { actionType: "CONNECT", resources: ["arn:aws:iot:us-east-1:123456789012:client/someone-else"] },
        ],
      }),
    );
    expect(other.authResults?.[0]?.authDecision).toBe("IMPLICIT_DENY");

    // policyNamesToSkip / policyNamesToAdd.
    await h.iot.send(new CreatePolicyCommand({ policyName: "auth-extra", policyDocument: allowAll }));
    const skipped = await h.iot.send(
      new TestAuthorizationCommand({
        principal: certArn,
        clientId: "auth-thing",
        policyNamesToSkip: ["auth-deny"],
        policyNamesToAdd: ["auth-extra"],
        authInfos: [
          { actionType: "PUBLISH", resources: [topic("d/device-cn/admin")] },
          { actionType: "SUBSCRIBE", resources: ["arn:aws:iot:us-east-1:123456789012:topicfilter/x"] },
        ],
      }),
    );
    expect(skipped.authResults?.map((r) => r.authDecision)).toEqual(["ALLOWED", "ALLOWED"]);
    await expect(
      h.iot.send(
        new TestAuthorizationCommand({
          principal: arn("cert", "c".repeat(64)),
          authInfos: [{ actionType: "CONNECT", resources: ["*"] }],
        }),
      ),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("evaluates the policies of the client's thing groups and their parents, as the device gateway does", async () => {
    // Prepare: the certificate's own policy allows connecting only; publishing comes from the parent group
    const certArn = await newCertificateArn("grouped-cn");
    await h.iot.send(new CreateThingCommand({ thingName: "auth-grouped" }));
    await h.iot.send(new AttachThingPrincipalCommand({ thingName: "auth-grouped", principal: certArn }));
    await h.iot.send(new CreateThingGroupCommand({ thingGroupName: "auth-fleet" }));
    await h.iot.send(
      new CreateThingGroupCommand({ thingGroupName: "auth-fleet-eu", parentGroupName: "auth-fleet" }),
    );
    await h.iot.send(
      new AddThingToThingGroupCommand({ thingGroupName: "auth-fleet-eu", thingName: "auth-grouped" }),
    );
    const publish = policyDocument([
      {
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: "arn:aws:iot:us-east-1:123456789012:topic/fleet/${iot:Connection.Thing.ThingName}",
      },
    ]);
    await h.iot.send(
      new CreatePolicyCommand({ policyName: "auth-own-connect", policyDocument: connectOnly }),
    );
    await h.iot.send(new CreatePolicyCommand({ policyName: "auth-fleet-publish", policyDocument: publish }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "auth-own-connect", target: certArn }));
    await h.iot.send(
      new AttachPolicyCommand({ policyName: "auth-fleet-publish", target: arn("thinggroup", "auth-fleet") }),
    );
    const authInfos = [
      { actionType: "PUBLISH" as const, resources: [arn("topic", "fleet/auth-grouped")] },
      { actionType: "CONNECT" as const, resources: [arn("client", "auth-grouped")] },
    ];

    // Act
    const asThing = await h.iot.send(
      new TestAuthorizationCommand({ principal: certArn, clientId: "auth-grouped", authInfos }),
    );
    const asOther = await h.iot.send(
      new TestAuthorizationCommand({ principal: certArn, clientId: "not-the-thing", authInfos }),
    );
    const skipped = await h.iot.send(
      new TestAuthorizationCommand({
        principal: certArn,
        clientId: "auth-grouped",
        policyNamesToSkip: ["auth-fleet-publish"],
        authInfos,
      }),
    );

    // Assess: the group policy applies only when the client id names the attached thing
    expect(asThing.authResults?.map((r) => r.authDecision)).toEqual(["ALLOWED", "ALLOWED"]);
    expect(asThing.authResults?.[0]?.allowed?.policies?.map((p) => p.policyName)).toEqual([
      "auth-fleet-publish",
    ]);
    expect(asOther.authResults?.map((r) => r.authDecision)).toEqual(["IMPLICIT_DENY", "ALLOWED"]);
    expect(skipped.authResults?.map((r) => r.authDecision)).toEqual(["IMPLICIT_DENY", "ALLOWED"]);
  });

  it("GetEffectivePolicies: the principal's policies, then those of the thing's groups and their parents, each once", async () => {
    // Prepare
    const certArn = await newCertificateArn("effective-cn");
    await h.iot.send(new CreateThingCommand({ thingName: "eff-thing" }));
    await h.iot.send(new CreateThingGroupCommand({ thingGroupName: "eff-root" }));
    await h.iot.send(
      new CreateThingGroupCommand({ thingGroupName: "eff-leaf", parentGroupName: "eff-root" }),
    );
    await h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: "eff-leaf", thingName: "eff-thing" }));
    for (const name of ["eff-own", "eff-root-policy", "eff-leaf-policy"])
      await h.iot.send(new CreatePolicyCommand({ policyName: name, policyDocument: connectOnly }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "eff-own", target: certArn }));
    await h.iot.send(
      new AttachPolicyCommand({ policyName: "eff-root-policy", target: arn("thinggroup", "eff-root") }),
    );
    await h.iot.send(
      new AttachPolicyCommand({ policyName: "eff-leaf-policy", target: arn("thinggroup", "eff-leaf") }),
    );
    // the same policy on the certificate and on a group counts once
    await h.iot.send(
      new AttachPolicyCommand({ policyName: "eff-own", target: arn("thinggroup", "eff-root") }),
    );

    // Act
    const both = await h.iot.send(
      new GetEffectivePoliciesCommand({ principal: certArn, thingName: "eff-thing" }),
    );
    const thingOnly = await h.iot.send(new GetEffectivePoliciesCommand({ thingName: "eff-thing" }));
    const leafOnly = await h.iot.send(
      new ListAttachedPoliciesCommand({ target: arn("thinggroup", "eff-leaf") }),
    );
    const recursive = await h.iot.send(
      new ListAttachedPoliciesCommand({ target: arn("thinggroup", "eff-leaf"), recursive: true }),
    );
    const unknownThing = await h.iot
      .send(new GetEffectivePoliciesCommand({ thingName: "no-such-thing" }))
      .catch((e: unknown) => e);

    // Assess
    expect(both.effectivePolicies?.map((p) => p.policyName)).toEqual([
      "eff-own",
      "eff-leaf-policy",
      "eff-root-policy",
    ]);
    expect(both.effectivePolicies?.[0]).toMatchObject({
      policyArn: arn("policy", "eff-own"),
      policyDocument: connectOnly,
    });
    expect(thingOnly.effectivePolicies?.map((p) => p.policyName).sort()).toEqual([
      "eff-leaf-policy",
      "eff-own",
      "eff-root-policy",
    ]);
    expect(leafOnly.policies?.map((p) => p.policyName)).toEqual(["eff-leaf-policy"]);
    expect(recursive.policies?.map((p) => p.policyName)).toEqual([
      "eff-leaf-policy",
      "eff-own",
      "eff-root-policy",
    ]);
    expect(unknownThing).toBeInstanceOf(ResourceNotFoundException);
  });
});
