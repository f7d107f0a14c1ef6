import { DynamoDBPersistenceLayer } from "@aws-lambda-powertools/idempotency/dynamodb";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { SQSEvent } from "aws-lambda";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DynamoAllowlist } from "../../adapters/dynamo/allowlist.ts";
import { DynamoLedger } from "../../adapters/dynamo/ledger.ts";
import { DynamoLots } from "../../adapters/dynamo/lots.ts";
import { DynamoMappings } from "../../adapters/dynamo/mappings.ts";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { JitrError } from "../../domain/errors.ts";
import type { RegisteredEvent } from "../../domain/types.ts";
import { makeProvisionHandler } from "../../handlers/provision.ts";
import { certificateIdOf, issueCertificate } from "../../pki/certificates.ts";
import { startDynalite } from "../support/dynalite.ts";
import { FakeClock, FakeIot, testSettings } from "../support/fakes.ts";
import { lambdaContext } from "../support/lambda.ts";
import { allowed, CA_ID, defaultMapping, eventFor, testCa } from "../support/world.ts";

let db: Awaited<ReturnType<typeof startDynalite>>;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => db.close());

let output: string[];
beforeEach(() => {
  output = [];
  const capture = (chunk: string | Uint8Array) => {
    output.push(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, "write").mockImplementation(capture);
  vi.spyOn(process.stderr, "write").mockImplementation(capture);
});
afterEach(() => vi.restoreAllMocks());

const logLines = () =>
  output
    .join("")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function setup() {
  const doc = createDocumentClient(db.client);
  const iot = new FakeIot();
  const run = crypto.randomUUID().slice(0, 8);
  const device = (n: number) => `dev-${run}-${n}`;
  await doc.send(new PutCommand({ TableName: db.names.mappings, Item: defaultMapping }));
  const instance = () =>
    makeProvisionHandler({
      provision: {
        iot,
        allowlist: new DynamoAllowlist({ doc, table: db.names.allowlist }),
        mappings: new DynamoMappings({ doc, table: db.names.mappings }),
        lots: new DynamoLots({ doc, table: db.names.lots, recordsTable: db.names.allowlist }),
        ledger: new DynamoLedger({ doc, table: db.names.ledger }),
        clock: new FakeClock(new Date()),
        settings: testSettings({ attempts: 2, baseDelayMs: 1, maxDelayMs: 2 }),
      },
      persistenceStore: new DynamoDBPersistenceLayer({
        tableName: db.names.idempotency,
        awsSdkV3Client: db.client,
      }),
      idempotencyTtlSeconds: 3600,
      logger: new Logger({ serviceName: "jitr-test" }),
      metrics: new Metrics({ namespace: "JitrTest", serviceName: "jitr-test" }),
    });
  const handler = instance();
  const register = async (cn: string, allow = true): Promise<RegisteredEvent> => {
    const issued = await issueCertificate(await testCa(), { subject: { CN: cn } });
    const id = certificateIdOf(issued.certificatePem);
    iot.addCertificate(id, issued.certificatePem, CA_ID);
    if (allow) await doc.send(new PutCommand({ TableName: db.names.allowlist, Item: allowed(cn) }));
    return eventFor(id);
  };
  return { iot, handler, instance, device, register };
}

/** Calls the local table makes to the idempotency table, counted from here on. */
function idempotencyCalls() {
  const send = vi.spyOn(db.client, "send");
  return () =>
    send.mock.calls.filter(([command]) => {
      const input = (command as { input?: { TableName?: string } }).input;
      return input?.TableName === db.names.idempotency;
    }).length;
}

const sqs = (bodies: string[]): SQSEvent => ({
  Records: bodies.map((body, i) => ({
    messageId: `m-${i}`,
    receiptHandle: `r-${i}`,
    body,
    attributes: {
      ApproximateReceiveCount: "1",
      SentTimestamp: "0",
      SenderId: "iot",
      ApproximateFirstReceiveTimestamp: "0",
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:jitr-events",
    awsRegion: "us-east-1",
  })),
});

describe("provisioning handler", () => {
  it("provisions from a direct topic-rule invocation, logging certificate, device and CA ids and no PEM", async () => {
    const { iot, handler, device, register } = await setup();
    const event = await register(device(1));
    const result = await handler({ ...event, sourceIp: "203.0.113.1" }, lambdaContext());
    expect(result).toEqual({
      outcome: "provisioned",
      certificateId: event.certificateId,
      deviceId: device(1),
      policyName: "jitr-sensor",
    });
    expect(iot.statusOf(event.certificateId)).toBe("ACTIVE");
    const line = logLines().find((l) => l.message === "certificate provisioned");
    expect(line).toMatchObject({
      certificateId: event.certificateId,
      deviceId: device(1),
      caCertificateId: CA_ID,
    });
    expect(output.join("")).not.toContain("BEGIN CERTIFICATE");
    const emf = logLines().find((l) => "_aws" in l && "Provisioned" in l);
    expect(emf).toMatchObject({ Provisioned: 1, service: "jitr-test" });
  });

  it("a duplicate event returns the stored outcome and makes no IoT call", async () => {
    const { iot, handler, device, register } = await setup();
    const event = await register(device(1));
    const first = await handler(event, lambdaContext());
    const calls = iot.calls.length;
    const second = await handler({ ...event, timestamp: event.timestamp + 5000 }, lambdaContext());
    expect(second).toEqual(first);
    expect(iot.calls.length).toBe(calls);
  });

  it("a duplicate of a settled certificate answers from the instance's memory: no IoT call, no table call", async () => {
    // Prepare
    const { iot, handler, device, register } = await setup();
    const event = await register(device(1));
    const first = await handler(event, lambdaContext());
    const iotCalls = iot.calls.length;
    const tableCalls = idempotencyCalls();

    // Act
    const again = await handler(sqs([JSON.stringify(event), JSON.stringify(event)]), lambdaContext());

    // Assess
    expect(again).toEqual({ batchItemFailures: [] });
    expect(first).toMatchObject({ outcome: "provisioned" });
    expect(iot.calls.length).toBe(iotCalls);
    expect(tableCalls()).toBe(0);
  });

  it("duplicates in the batch of their first event drain at once, without a retry or a second run", async () => {
    // Prepare
    const { iot, handler, device, register } = await setup();
    const event = await register(device(1));
    const other = await register(device(2));
    const body = JSON.stringify(event);

    // Act
    const response = await handler(sqs([body, body, JSON.stringify(other), body]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect(iot.statusOf(other.certificateId)).toBe("ACTIVE");
    const described = iot.calls.filter((c) => c.method === "describeCertificate").map((c) => c.args[0]);
    expect(described.filter((id) => id === event.certificateId)).toHaveLength(1);
  });

  it("a duplicate of a certificate another instance is deciding drains at once; that run still records the outcome", async () => {
    // Prepare
    const { iot, handler, instance, device, register } = await setup();
    const event = await register(device(1));
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const create = iot.createThing.bind(iot);
    iot.createThing = async (thing) => {
      await gate;
      return create(thing);
    };
    const first = handler(event, lambdaContext());
    await vi.waitFor(() => expect(iot.calls.some((c) => c.method === "describeCertificate")).toBe(true));
    const callsBefore = iot.calls.length;

    // Act
    const duplicate = await instance()(sqs([JSON.stringify(event)]), lambdaContext());
    const callsByDuplicate = iot.calls.length - callsBefore;
    release();

    // Assess
    expect(duplicate).toEqual({ batchItemFailures: [] });
    expect(callsByDuplicate).toBe(0);
    expect(await first).toMatchObject({ outcome: "provisioned", certificateId: event.certificateId });
    expect(iot.statusOf(event.certificateId)).toBe("ACTIVE");
  });

  it("a duplicate never carries one certificate's result to another: each certificate is decided on its own", async () => {
    // Prepare
    const { handler, device, register } = await setup();
    const allowedEvent = await register(device(1));
    const unknownEvent = await register(device(2), false);
    await handler(allowedEvent, lambdaContext());

    // Act
    const result = await handler(unknownEvent, lambdaContext());

    // Assess
    expect(result).toMatchObject({ outcome: "denied", reason: "not-allowlisted" });
  });

  it("an SQS batch reports only the failed record, drops the malformed one, and counts a denial by reason", async () => {
    const { iot, handler, device, register } = await setup();
    const good = await register(device(1));
    const unknown = await register(device(2), false);
    const failing = await register(device(3));
    // createThing fails for the third device only
    const originalCreate = iot.createThing.bind(iot);
    iot.createThing = async (thing) => {
      if (thing.thingName === device(3)) throw new JitrError("AccessDeniedException");
      return originalCreate(thing);
    };
    const response = await handler(
      sqs([JSON.stringify(good), "{not json", JSON.stringify(unknown), JSON.stringify(failing)]),
      lambdaContext(),
    );
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "m-3" }] });
    expect(iot.statusOf(good.certificateId)).toBe("ACTIVE");
    expect(iot.statusOf(unknown.certificateId)).toBe("INACTIVE");
    expect(iot.statusOf(failing.certificateId)).toBe("PENDING_ACTIVATION");
    const lines = logLines();
    expect(lines.some((l) => l.message === "malformed event dropped")).toBe(true);
    expect(lines.find((l) => l.message === "provisioning failed")).toMatchObject({
      certificateId: failing.certificateId,
    });
    const denied = lines.find((l) => "_aws" in l && "Denied" in l);
    expect(denied).toMatchObject({ Denied: 1, reason: "not-allowlisted" });
    expect(lines.some((l) => "_aws" in l && l.Failed === 1)).toBe(true);
  });

  it("drains a duplicate delivered while the same certificate's run is under way: no retry, no failure told", async () => {
    const { iot, handler, device, register } = await setup();
    const event = await register(device(1));
    // The first delivery stalls in its first IoT call until released; a second delivery of the same event meanwhile
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => {
      release = resolve;
    });
    const originalDescribe = iot.describeCertificate.bind(iot);
    let entered = false;
    iot.describeCertificate = async (id) => {
      entered = true;
      await stalled;
      return originalDescribe(id);
    };
    const first = handler(event, lambdaContext());
    while (!entered) await new Promise((r) => setTimeout(r, 5));
    const second = await handler(sqs([JSON.stringify(event)]), lambdaContext());
    expect(second).toEqual({ batchItemFailures: [] });
    release();
    expect(await first).toMatchObject({ outcome: "provisioned" });
  });

  it("a failed event is retried for real: the idempotency record does not block the retry", async () => {
    const { iot, handler, device, register } = await setup();
    const event = await register(device(1));
    iot.failOn("attachPolicy", () => new JitrError("AccessDeniedException"), 1);
    await expect(handler(event, lambdaContext())).rejects.toThrow(/attachPolicy/);
    expect(await handler(event, lambdaContext())).toMatchObject({ outcome: "provisioned" });
  });

  it("a malformed direct event changes nothing and is not retried", async () => {
    const { iot, handler } = await setup();
    const result = await handler({ certificateId: "nope" }, lambdaContext());
    expect(result).toMatchObject({ outcome: "malformed" });
    expect((result as { error: string }).error).toContain("certificateId");
    expect(iot.calls).toHaveLength(0);
  });
});
