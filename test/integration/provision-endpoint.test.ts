import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { ensureTables } from "../../adapters/tables.ts";
import { readProvisioningConfig } from "../../handlers/config.ts";
import { makeProvisionHandler } from "../../handlers/provision.ts";
import { buildProvisioning } from "../../handlers/wiring.ts";
import { type AwsEndpoint, startAwsEndpoint } from "../../local/aws/index.ts";
import { LOCAL_TABLES } from "../../local/contract.ts";
import { localHandlerEnvironment } from "../../local/stack.ts";
import { certificateIdOf, issueCertificate } from "../../pki/certificates.ts";
import { lambdaContext } from "../support/lambda.ts";
import { eventFor, testCa } from "../support/world.ts";

/**
 * The deployed handler module with the real SDK adapters, against the local endpoint (IoT emulator and
 * DynamoDB wire protocol), with a third of the IoT calls throttled.
 */
let aws: AwsEndpoint;
let clients: { iot: IoTClient; dynamo: DynamoDBClient };
let caId: string;

beforeAll(async () => {
  aws = await startAwsEndpoint({ port: 0, faults: { throttleRate: 0.3 } });
  const config = {
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "t", secretAccessKey: "t" },
    maxAttempts: 1,
  };
  clients = { iot: new IoTClient(config), dynamo: new DynamoDBClient(config) };
  await ensureTables(clients.dynamo, LOCAL_TABLES);
  const ca = await testCa();
  const code = aws.iot.getRegistrationCode();
  const verification = await issueCertificate(ca, { subject: { CN: code } });
  const registered = await aws.iot.registerCACertificate({
    caCertificate: ca.certificatePem,
    verificationCertificate: verification.certificatePem,
    setAsActive: true,
    allowAutoRegistration: true,
  });
  caId = registered.certificateId;
  const doc = createDocumentClient(clients.dynamo);
  await doc.send(
    new PutCommand({
      TableName: LOCAL_TABLES.mappings,
      Item: { selector: "default", policy: { template: "sensor" }, version: 1 },
    }),
  );
  await doc.send(
    new PutCommand({
      TableName: LOCAL_TABLES.mappings,
      Item: {
        selector: "profile:grouped",
        policy: { template: "sensor" },
        thingGroups: ["no-such-group"],
        version: 1,
      },
    }),
  );
});
afterAll(async () => {
  clients.iot.destroy();
  clients.dynamo.destroy();
  await aws.close();
});

/** EMF lines the handler prints (what CloudWatch would ingest on Lambda). */
let emf: Record<string, unknown>[] = [];
beforeEach(() => {
  emf = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    for (const line of String(chunk).split("\n")) if (line.startsWith('{"_aws"')) emf.push(JSON.parse(line));
    return true;
  });
});
afterEach(() => vi.restoreAllMocks());

const counted = (name: string) =>
  emf.reduce((sum, line) => {
    const value = line[name];
    return sum + (Array.isArray(value) ? value.length : typeof value === "number" ? value : 0);
  }, 0);

function handler(attempts = 12) {
  const env = {
    ...localHandlerEnvironment("us-east-1", "123456789012", LOCAL_TABLES),
    JITR_RETRY_ATTEMPTS: String(attempts),
    JITR_RETRY_BASE_DELAY_MS: "2",
    JITR_RETRY_MAX_DELAY_MS: "20",
    // One handler instance serves the whole test, so it starts with the whole quota rather than a quarter
    // of it (the deployed default shares it among 4): the figure paced here is the test's length, not a check.
    JITR_PROVISION_CONCURRENCY: "1",
  };
  const config = readProvisioningConfig(env);
  const logger = new Logger({ serviceName: "it", logLevel: "SILENT" });
  return makeProvisionHandler(
    buildProvisioning(config, clients, { logger, metrics: new Metrics({ namespace: "It", logger }) }),
  );
}

async function registerDevice(deviceId: string, record?: Record<string, unknown>) {
  const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
  await aws.iot.autoRegisterCertificate(issued.certificatePem, caId);
  if (record) {
    await createDocumentClient(clients.dynamo).send(
      new PutCommand({
        TableName: LOCAL_TABLES.allowlist,
        Item: { deviceId, status: "allowed", version: 1, ...record },
      }),
    );
  }
  return eventFor(certificateIdOf(issued.certificatePem));
}

describe("provisioning against the local AWS endpoint", () => {
  it("provisions through throttling: every device ACTIVE with its thing and policy attached", async () => {
    const provision = handler();
    const events = await Promise.all(Array.from({ length: 8 }, (_, i) => registerDevice(`it-dev-${i}`, {})));
    const results = await Promise.all(
      events.map((e) => provision({ ...e, caCertificateId: caId }, lambdaContext())),
    );
    expect(results.every((r) => "outcome" in r && r.outcome === "provisioned")).toBe(true);
    for (const [i, event] of events.entries()) {
      const arn = aws.iot.arn("cert", event.certificateId);
      expect(aws.iot.describeCertificateById(event.certificateId)?.status).toBe("ACTIVE");
      expect(aws.iot.thingsForPrincipal(arn)).toEqual([`it-dev-${i}`]);
      expect(aws.iot.policiesForPrincipal(arn)).toHaveLength(1);
    }
    expect(counted("Provisioned")).toBe(8);
  });

  it("the throttling is real: without retries, provisioning fails", async () => {
    const provision = handler(1);
    const events = await Promise.all(
      Array.from({ length: 8 }, (_, i) => registerDevice(`it-noretry-${i}`, {})),
    );
    const settled = await Promise.allSettled(
      events.map((e) => provision({ ...e, caCertificateId: caId }, lambdaContext())),
    );
    expect(settled.some((s) => s.status === "rejected" && /Throttling/.test(String(s.reason)))).toBe(true);
  });

  it("a permanent failure undoes the run on the registry, leaves the certificate pending and the record unbound", async () => {
    const provision = handler();
    const event = await registerDevice("it-taken", {});
    // the certificate is attached exclusively to another thing already: attaching it to its own fails for good
    const arn = aws.iot.arn("cert", event.certificateId);
    aws.iot.createThing({ thingName: "it-elsewhere" });
    aws.iot.attachThingPrincipal("it-elsewhere", arn, "EXCLUSIVE_THING");
    await expect(provision({ ...event, caCertificateId: caId }, lambdaContext())).rejects.toThrow(
      /attachThing/,
    );
    expect(aws.iot.describeCertificateById(event.certificateId)?.status).toBe("PENDING_ACTIVATION");
    expect(counted("Failed")).toBe(1);
    // read the registry directly: the SDK path is throttled on purpose
    expect(aws.iot.describeThingByName("it-taken")).toBeUndefined();
    expect(aws.iot.thingsForPrincipal(arn)).toEqual(["it-elsewhere"]);
    expect(aws.iot.policiesForPrincipal(arn)).toEqual([]);
    const record = await createDocumentClient(clients.dynamo).send(
      new GetCommand({ TableName: LOCAL_TABLES.allowlist, Key: { deviceId: "it-taken" } }),
    );
    expect(record.Item?.certificateId).toBeUndefined();
  });

  it("a mapping naming a thing group that does not exist quarantines the device on the first attempt (row 11b), not a failure", async () => {
    const provision = handler();
    const event = await registerDevice("it-grouped", { profile: "grouped" });
    const result = await provision({ ...event, caCertificateId: caId }, lambdaContext());
    expect(result).toMatchObject({ outcome: "denied", reason: "missing-reference" });
    expect(aws.iot.describeCertificateById(event.certificateId)?.status).toBe("INACTIVE");
    expect(counted("Failed")).toBe(0);
    expect(aws.iot.describeThingByName("it-grouped")).toBeUndefined();
  });
});
