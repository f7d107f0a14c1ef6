import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateThingCommand,
  DeletePolicyCommand,
  DeletePolicyVersionCommand,
  DeleteThingCommand,
  DescribeCertificateCommand,
  DescribeThingCommand,
  DescribeThingTypeCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetPolicyCommand,
  InternalException,
  InternalFailureException,
  InvalidRequestException,
  IoTClient,
  ListPolicyVersionsCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  ServiceUnavailableException,
  ThrottlingException,
  UnauthorizedException,
  UpdateCertificateCommand,
  UpdateThingCommand,
  VersionConflictException,
} from "@aws-sdk/client-iot";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { IotRegistryAdapter, mapIotError } from "../../adapters/iot.ts";
import {
  AlreadyExistsError,
  JitrError,
  NotFoundError,
  ThrottlingError,
  TransientError,
} from "../../domain/errors.ts";

const CERT_ID = "a".repeat(64);
const CERT_ARN = `arn:aws:iot:eu-west-1:123456789012:cert/${CERT_ID}`;
const PEM = "-----BEGIN CERTIFICATE-----\nMIIBsecretish\n-----END CERTIFICATE-----\n";

const client = new IoTClient({ region: "eu-west-1" });
const iot = mockClient(client);
const adapter = new IotRegistryAdapter(client);

beforeEach(() => {
  iot.reset();
});

/** The one command the client received: its class and its input. */
function onlyCommand(): { command: unknown; input: unknown } {
  const calls = iot.calls();
  expect(calls).toHaveLength(1);
  const command = calls[0]?.args[0];
  return { command, input: command?.input };
}

describe("IotRegistryAdapter sends one command per method with the exact input", () => {
  const cases: { method: string; act: () => Promise<unknown>; command: unknown; input: unknown }[] = [
    {
      method: "describeCertificate",
      act: () => adapter.describeCertificate(CERT_ID),
      command: DescribeCertificateCommand,
      input: { certificateId: CERT_ID },
    },
    {
      method: "updateCertificateStatus",
      act: () => adapter.updateCertificateStatus(CERT_ID, "ACTIVE"),
      command: UpdateCertificateCommand,
      input: { certificateId: CERT_ID, newStatus: "ACTIVE" },
    },
    {
      method: "describeThingType",
      act: () => adapter.describeThingType("sensor"),
      command: DescribeThingTypeCommand,
      input: { thingTypeName: "sensor" },
    },
    {
      method: "describeThing",
      act: () => adapter.describeThing("dev-1"),
      command: DescribeThingCommand,
      input: { thingName: "dev-1" },
    },
    {
      method: "createThing with a type",
      act: () =>
        adapter.createThing({ thingName: "dev-1", thingTypeName: "sensor", attributes: { lot: "L1" } }),
      command: CreateThingCommand,
      input: { thingName: "dev-1", thingTypeName: "sensor", attributePayload: { attributes: { lot: "L1" } } },
    },
    {
      method: "createThing without a type",
      act: () => adapter.createThing({ thingName: "dev-1", attributes: {} }),
      command: CreateThingCommand,
      input: { thingName: "dev-1", attributePayload: { attributes: {} } },
    },
    {
      method: "updateThing with a type",
      act: () => adapter.updateThing({ thingName: "dev-1", thingTypeName: "sensor", attributes: { a: "1" } }),
      command: UpdateThingCommand,
      input: {
        thingName: "dev-1",
        thingTypeName: "sensor",
        attributePayload: { attributes: { a: "1" }, merge: false },
      },
    },
    {
      method: "updateThing without a type",
      act: () => adapter.updateThing({ thingName: "dev-1", attributes: { a: "1" } }),
      command: UpdateThingCommand,
      input: {
        thingName: "dev-1",
        removeThingType: true,
        attributePayload: { attributes: { a: "1" }, merge: false },
      },
    },
    {
      method: "deleteThing",
      act: () => adapter.deleteThing("dev-1"),
      command: DeleteThingCommand,
      input: { thingName: "dev-1" },
    },
    {
      method: "addThingToThingGroup",
      act: () => adapter.addThingToThingGroup("dev-1", "fleet"),
      command: AddThingToThingGroupCommand,
      input: { thingName: "dev-1", thingGroupName: "fleet" },
    },
    {
      method: "getPolicy",
      act: () => adapter.getPolicy("p1"),
      command: GetPolicyCommand,
      input: { policyName: "p1" },
    },
    {
      method: "createPolicy",
      act: () => adapter.createPolicy("p1", '{"Version":"2012-10-17"}'),
      command: CreatePolicyCommand,
      input: { policyName: "p1", policyDocument: '{"Version":"2012-10-17"}' },
    },
    {
      method: "listPolicyVersions",
      act: () => adapter.listPolicyVersions("p1"),
      command: ListPolicyVersionsCommand,
      input: { policyName: "p1" },
    },
    {
      method: "createPolicyVersion",
      act: () => adapter.createPolicyVersion("p1", "{}"),
      command: CreatePolicyVersionCommand,
      input: { policyName: "p1", policyDocument: "{}", setAsDefault: true },
    },
    {
      method: "deletePolicyVersion",
      act: () => adapter.deletePolicyVersion("p1", "3"),
      command: DeletePolicyVersionCommand,
      input: { policyName: "p1", policyVersionId: "3" },
    },
    {
      method: "deletePolicy",
      act: () => adapter.deletePolicy("p1"),
      command: DeletePolicyCommand,
      input: { policyName: "p1" },
    },
    {
      method: "attachPolicy",
      act: () => adapter.attachPolicy("p1", CERT_ARN),
      command: AttachPolicyCommand,
      input: { policyName: "p1", target: CERT_ARN },
    },
    {
      method: "detachPolicy",
      act: () => adapter.detachPolicy("p1", CERT_ARN),
      command: DetachPolicyCommand,
      input: { policyName: "p1", target: CERT_ARN },
    },
    {
      method: "attachThingPrincipal",
      act: () => adapter.attachThingPrincipal("dev-1", CERT_ARN),
      command: AttachThingPrincipalCommand,
      input: { thingName: "dev-1", principal: CERT_ARN, thingPrincipalType: "EXCLUSIVE_THING" },
    },
    {
      method: "detachThingPrincipal",
      act: () => adapter.detachThingPrincipal("dev-1", CERT_ARN),
      command: DetachThingPrincipalCommand,
      input: { thingName: "dev-1", principal: CERT_ARN },
    },
  ];

  it.each(cases)("$method", async ({ act, command, input }) => {
    // Prepare: every command answers with a complete, empty-ish response
    iot.onAnyCommand().resolves({
      certificateDescription: { certificateArn: CERT_ARN, certificatePem: PEM, status: "ACTIVE" },
      policyDocument: "{}",
      defaultVersionId: "1",
    });

    // Act
    await act();

    // Assess
    const sent = onlyCommand();
    expect(sent.command).toBeInstanceOf(command);
    expect(sent.input).toStrictEqual(input);
  });

  it("updateThing replaces the attributes (merge: false) and keeps the given type", async () => {
    // Prepare
    iot.on(UpdateThingCommand).resolves({});

    // Act
    await adapter.updateThing({ thingName: "dev-1", thingTypeName: "sensor", attributes: { a: "1" } });

    // Assess
    expect(iot).toHaveReceivedCommandExactlyOnceWith(UpdateThingCommand, {
      thingName: "dev-1",
      thingTypeName: "sensor",
      attributePayload: { attributes: { a: "1" }, merge: false },
    });
    expect(iot.commandCalls(UpdateThingCommand)[0]?.args[0].input.removeThingType).toBeUndefined();
  });
});

describe("IotRegistryAdapter maps responses", () => {
  it("describeCertificate maps the certificate description", async () => {
    // Prepare
    iot.on(DescribeCertificateCommand, { certificateId: CERT_ID }).resolves({
      certificateDescription: {
        certificateId: CERT_ID,
        certificateArn: CERT_ARN,
        status: "PENDING_ACTIVATION",
        certificatePem: PEM,
        caCertificateId: "ca1",
        ownedBy: "123456789012",
      },
    });

    // Act
    const description = await adapter.describeCertificate(CERT_ID);

    // Assess
    expect(description).toStrictEqual({
      certificateId: CERT_ID,
      certificateArn: CERT_ARN,
      status: "PENDING_ACTIVATION",
      certificatePem: PEM,
      caCertificateId: "ca1",
    });
  });

  it("describeCertificate leaves caCertificateId out when the registry has none", async () => {
    // Prepare
    iot.on(DescribeCertificateCommand).resolves({
      certificateDescription: { certificateArn: CERT_ARN, status: "INACTIVE", certificatePem: PEM },
    });

    // Act
    const description = await adapter.describeCertificate(CERT_ID);

    // Assess
    expect(description).toStrictEqual({
      certificateId: CERT_ID,
      certificateArn: CERT_ARN,
      status: "INACTIVE",
      certificatePem: PEM,
    });
  });

  it("describeCertificate rejects a status the service does not know", async () => {
    // Prepare
    iot.on(DescribeCertificateCommand).callsFake(() => ({
      certificateDescription: { certificateArn: CERT_ARN, status: "SOMETHING_NEW", certificatePem: PEM },
    }));

    // Act
    const result = adapter.describeCertificate(CERT_ID);

    // Assess
    await expect(result).rejects.toThrow(/unknown status SOMETHING_NEW/);
  });

  it("describeThing maps name, type and attributes", async () => {
    // Prepare
    iot.on(DescribeThingCommand).resolves({
      thingName: "dev-1",
      thingTypeName: "sensor",
      attributes: { lot: "L1" },
      version: 4,
    });

    // Act
    const thing = await adapter.describeThing("dev-1");

    // Assess
    expect(thing).toStrictEqual({ thingName: "dev-1", thingTypeName: "sensor", attributes: { lot: "L1" } });
  });

  it("describeThing gives empty attributes and no type when the thing has none", async () => {
    // Prepare
    iot.on(DescribeThingCommand).resolves({ thingName: "dev-1" });

    // Act
    const thing = await adapter.describeThing("dev-1");

    // Assess
    expect(thing).toStrictEqual({ thingName: "dev-1", attributes: {} });
  });

  it.each([
    { metadata: { deprecated: true }, deprecated: true },
    { metadata: { deprecated: false }, deprecated: false },
    { metadata: undefined, deprecated: false },
  ])("describeThingType reports deprecated=$deprecated", async ({ metadata, deprecated }) => {
    // Prepare
    iot.on(DescribeThingTypeCommand).resolves({ thingTypeName: "sensor", thingTypeMetadata: metadata });

    // Act
    const type = await adapter.describeThingType("sensor");

    // Assess
    expect(type).toStrictEqual({ deprecated });
  });

  it("getPolicy maps document and default version", async () => {
    // Prepare
    iot.on(GetPolicyCommand).resolves({ policyName: "p1", policyDocument: '{"a":1}', defaultVersionId: "2" });

    // Act
    const policy = await adapter.getPolicy("p1");

    // Assess
    expect(policy).toStrictEqual({ policyName: "p1", document: '{"a":1}', defaultVersionId: "2" });
  });

  it("listPolicyVersions maps the versions", async () => {
    // Prepare
    const created = new Date("2024-01-02T03:04:05Z");
    iot.on(ListPolicyVersionsCommand).resolves({
      policyVersions: [
        { versionId: "2", isDefaultVersion: true, createDate: created },
        { versionId: "1", isDefaultVersion: false, createDate: created },
      ],
    });

    // Act
    const versions = await adapter.listPolicyVersions("p1");

    // Assess
    expect(versions).toStrictEqual([
      { versionId: "2", isDefault: true, createdAt: created },
      { versionId: "1", isDefault: false, createdAt: created },
    ]);
  });
});

describe("IotRegistryAdapter describe/get on a missing resource", () => {
  const notFound = () => new ResourceNotFoundException({ message: "does not exist", $metadata: {} });

  it.each([
    { method: "describeCertificate", act: () => adapter.describeCertificate(CERT_ID) },
    { method: "describeThingType", act: () => adapter.describeThingType("sensor") },
    { method: "describeThing", act: () => adapter.describeThing("dev-1") },
    { method: "getPolicy", act: () => adapter.getPolicy("p1") },
  ])("$method returns undefined", async ({ act }) => {
    // Prepare
    iot.onAnyCommand().rejects(notFound());

    // Act
    const result = await act();

    // Assess
    expect(result).toBeUndefined();
  });

  it("describeThing still maps other errors", async () => {
    // Prepare
    iot.on(DescribeThingCommand).rejects(new ThrottlingException({ message: "slow down", $metadata: {} }));

    // Act
    const result = adapter.describeThing("dev-1");

    // Assess
    await expect(result).rejects.toBeInstanceOf(TransientError);
  });
});

describe("IotRegistryAdapter error mapping", () => {
  const meta = { $metadata: {} };
  const cases: {
    label: string;
    error: Error;
    expected: new (...args: never[]) => JitrError;
    name: string;
  }[] = [
    {
      label: "ResourceNotFoundException",
      error: new ResourceNotFoundException({ message: "x", ...meta }),
      expected: NotFoundError,
      name: "NotFoundError",
    },
    {
      label: "ResourceAlreadyExistsException",
      error: new ResourceAlreadyExistsException({ message: "x", ...meta }),
      expected: AlreadyExistsError,
      name: "AlreadyExistsError",
    },
    {
      label: "ThrottlingException",
      error: new ThrottlingException({ message: "x", ...meta }),
      expected: ThrottlingError,
      name: "ThrottlingError",
    },
    {
      label: "ServiceUnavailableException",
      error: new ServiceUnavailableException({ message: "x", ...meta }),
      expected: TransientError,
      name: "TransientError",
    },
    {
      label: "InternalFailureException",
      error: new InternalFailureException({ message: "x", ...meta }),
      expected: TransientError,
      name: "TransientError",
    },
    {
      label: "InternalException",
      error: new InternalException({ message: "x", ...meta }),
      expected: TransientError,
      name: "TransientError",
    },
    {
      label: "VersionConflictException",
      error: new VersionConflictException({ message: "x", ...meta }),
      expected: TransientError,
      name: "TransientError",
    },
    {
      label: "an error marked $retryable",
      error: Object.assign(new InvalidRequestException({ message: "x", ...meta }), { $retryable: {} }),
      expected: TransientError,
      name: "TransientError",
    },
    {
      label: "an unknown error with HTTP 502",
      error: Object.assign(new Error("bad gateway"), { name: "Unknown", $metadata: { httpStatusCode: 502 } }),
      expected: TransientError,
      name: "TransientError",
    },
    {
      label: "a network error (no $metadata)",
      error: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
      expected: TransientError,
      name: "TransientError",
    },
    {
      label: "InvalidRequestException",
      error: new InvalidRequestException({ message: "x", ...meta }),
      expected: JitrError,
      name: "JitrError",
    },
    {
      label: "UnauthorizedException (401)",
      error: new UnauthorizedException({ message: "x", $metadata: { httpStatusCode: 401 } }),
      expected: JitrError,
      name: "JitrError",
    },
  ];

  it.each(cases)("$label becomes $name", async ({ error, expected, name }) => {
    // Prepare
    iot.on(DeleteThingCommand).rejects(error);

    // Act
    const thrown = await adapter.deleteThing("dev-1").then(
      () => undefined,
      (reason: unknown) => reason,
    );

    // Assess
    expect(thrown).toBeInstanceOf(expected);
    expect(thrown).toMatchObject({ name, cause: error });
  });

  it("names the operation and the resource in the message", async () => {
    // Prepare
    iot.on(AttachPolicyCommand).rejects(new InvalidRequestException({ message: "bad target", ...meta }));

    // Act
    const result = adapter.attachPolicy("p1", CERT_ARN);

    // Assess
    await expect(result).rejects.toThrow(
      `IoT AttachPolicy failed for policy p1 and ${CERT_ARN}: InvalidRequestException: bad target`,
    );
  });

  it("never puts the certificate PEM in the message", () => {
    // Prepare
    const error = new InvalidRequestException({ message: "rejected", ...meta });

    // Act
    const mapped = mapIotError(error, "UpdateCertificate", `certificate ${CERT_ID}`);

    // Assess
    expect(mapped.message).toContain(CERT_ID);
    expect(mapped.message).not.toContain("BEGIN CERTIFICATE");
  });

  it("passes a JitrError through unchanged", () => {
    // Prepare
    const error = new NotFoundError("already mapped");

    // Act
    const mapped = mapIotError(error, "DeleteThing", "thing dev-1");

    // Assess
    expect(mapped).toBe(error);
  });
});

describe("IotRegistryAdapter in a provisioning sequence", () => {
  it("sends the commands in order, activating the certificate last", async () => {
    // Prepare
    iot.onAnyCommand().resolves({});

    // Act
    await adapter.createThing({ thingName: "dev-1", thingTypeName: "sensor", attributes: { lot: "L1" } });
    await adapter.addThingToThingGroup("dev-1", "fleet");
    await adapter.createPolicy("jitr-dev-1", "{}");
    await adapter.attachPolicy("jitr-dev-1", CERT_ARN);
    await adapter.attachThingPrincipal("dev-1", CERT_ARN);
    await adapter.updateCertificateStatus(CERT_ID, "ACTIVE");

    // Assess
    const sent = iot.calls().map((call) => call.args[0].constructor);
    expect(sent).toStrictEqual([
      CreateThingCommand,
      AddThingToThingGroupCommand,
      CreatePolicyCommand,
      AttachPolicyCommand,
      AttachThingPrincipalCommand,
      UpdateCertificateCommand,
    ]);
    expect(iot).toHaveReceivedNthCommandWith(AttachPolicyCommand, 1, {
      policyName: "jitr-dev-1",
      target: CERT_ARN,
    });
    expect(iot).toHaveReceivedNthCommandWith(AttachThingPrincipalCommand, 1, {
      thingName: "dev-1",
      principal: CERT_ARN,
      thingPrincipalType: "EXCLUSIVE_THING",
    });
    expect(iot).toHaveReceivedLastCommandWith(UpdateCertificateCommand, {
      certificateId: CERT_ID,
      newStatus: "ACTIVE",
    });
  });
});
