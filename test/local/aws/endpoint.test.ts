import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  CreatePolicyCommand,
  CreateThingCommand,
  DescribeCACertificateCommand,
  DescribeEndpointCommand,
  DescribeThingCommand,
  GetPolicyCommand,
  GetRegistrationCodeCommand,
  InternalFailureException,
  InvalidRequestException,
  IoTServiceException,
  ListJobsCommand,
  ListThingsCommand,
  RegisterCACertificateCommand,
  ServiceUnavailableException,
  ThrottlingException,
} from "@aws-sdk/client-iot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  IotError,
  LOCAL_KEEP_ALIVE_MS,
  serviceFromAuthorization,
  startAwsEndpoint,
} from "../../../local/aws/index.ts";
import { RateLimiter } from "../../../local/aws/iot/limits.ts";
import { createCa, issueCertificate, verificationCertificate } from "./certs.ts";
import { allowAll, type Harness, startHarness } from "./helpers.ts";

const signed = (service: string) => ({
  authorization: `AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=00`,
});

describe("routing", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("listens on 127.0.0.1 with an OS-picked port", () => {
    expect(h.endpoint.url).toBe(`http://127.0.0.1:${h.endpoint.port}`);
    expect(h.endpoint.port).toBeGreaterThan(0);
  });

  it("reads the service from the SigV4 credential scope", () => {
    expect(serviceFromAuthorization(signed("iot").authorization)).toBe("iot");
    expect(serviceFromAuthorization(signed("dynamodb").authorization)).toBe("dynamodb");
    expect(serviceFromAuthorization("Bearer x")).toBeUndefined();
    expect(serviceFromAuthorization(undefined)).toBeUndefined();
  });

  it("answers unknown IoT routes with a clear 404, and keeps serving", async () => {
    const res = await fetch(`${h.endpoint.url}/no/such/route`, { headers: signed("iot") });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-amzn-errortype")).toBe("UnknownOperationException");
    expect(((await res.json()) as { message: string }).message).toMatch(/GET \/no\/such\/route/);
    const err = await h.iot.send(new ListJobsCommand({})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IoTServiceException);
    expect((err as IoTServiceException).name).toBe("UnknownOperationException");
    expect((err as IoTServiceException).$metadata.httpStatusCode).toBe(404);
    expect((await h.iot.send(new ListThingsCommand({}))).things).toEqual([]);
  });

  it("serialises errors with the code header, JSON message and status", async () => {
    const res = await fetch(`${h.endpoint.url}/things/missing-thing`, { headers: signed("iot") });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-amzn-errortype")).toBe("ResourceNotFoundException");
    expect(await res.json()).toEqual({ message: "Thing missing-thing cannot be found." });
    const bad = await fetch(`${h.endpoint.url}/policies/p`, {
      method: "POST",
      headers: signed("iot"),
      body: "{oops",
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-amzn-errortype")).toBe("InvalidRequestException");
  });

  it("refuses other services and unsigned requests", async () => {
    const other = await fetch(`${h.endpoint.url}/`, { method: "POST", headers: signed("sqs"), body: "" });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { message: string }).message).toMatch(/sqs/);
    const unsigned = await fetch(`${h.endpoint.url}/things`);
    expect(unsigned.status).toBe(403);
  });

  it("answers DescribeEndpoint with a local host name", async () => {
    const out = await h.iot.send(new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }));
    expect(out.endpointAddress).toBe("localhost");
    await expect(
      h.iot.send(new DescribeEndpointCommand({ endpointType: "iot:Nope" })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
  });

  it("serves DynamoDB on the same port", async () => {
    await h.dynamodb.send(
      new CreateTableCommand({
        TableName: "allowlist",
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    // A new table is CREATING until the local DynamoDB's timer makes it ACTIVE, as on AWS.
    await waitUntilTableExists(
      { client: h.dynamodb, maxWaitTime: 10, minDelay: 0.05 },
      { TableName: "allowlist" },
    );
    const table = await h.dynamodb.send(new DescribeTableCommand({ TableName: "allowlist" }));
    expect(table.Table?.TableStatus).toBe("ACTIVE");
    const put = (value: string) =>
      h.dynamodb.send(
        new PutItemCommand({
          TableName: "allowlist",
          Item: { pk: { S: "device-1" }, v: { S: value } },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    await put("first");
    await expect(put("second")).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    const item = await h.dynamodb.send(
      new GetItemCommand({ TableName: "allowlist", Key: { pk: { S: "device-1" } } }),
    );
    expect(item.Item).toEqual({ pk: { S: "device-1" }, v: { S: "first" } });
  });
});

describe("persistence", () => {
  it("keeps IoT state and DynamoDB data across a restart with a data dir", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "jitr-aws-"));
    try {
      const ca = await createCa({ commonName: "Persisted CA" });
      let h = await startHarness({ dataDir });
      const { registrationCode } = await h.iot.send(new GetRegistrationCodeCommand({}));
      const verification = await verificationCertificate(ca, registrationCode ?? "");
      await h.iot.send(
        new RegisterCACertificateCommand({
          caCertificate: ca.pem,
          verificationCertificate: verification.pem,
          setAsActive: true,
          allowAutoRegistration: true,
        }),
      );
      const device = await issueCertificate(ca, { commonName: "persisted-device" });
      await h.endpoint.iot.autoRegisterCertificate(device.pem, ca.id);
      const thing = await h.iot.send(
        new CreateThingCommand({ thingName: "persisted", attributePayload: { attributes: { a: "b" } } }),
      );
      await h.iot.send(new CreatePolicyCommand({ policyName: "persisted-policy", policyDocument: allowAll }));
      await h.dynamodb.send(
        new CreateTableCommand({
          TableName: "persisted",
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
      await waitUntilTableExists(
        { client: h.dynamodb, maxWaitTime: 10, minDelay: 0.05 },
        { TableName: "persisted" },
      );
      await h.dynamodb.send(
        new PutItemCommand({ TableName: "persisted", Item: { pk: { S: "k" }, n: { N: "42" } } }),
      );
      await h.close();

      const saved = JSON.parse(await readFile(join(dataDir, "iot.json"), "utf8")) as { things: unknown[] };
      expect(saved.things).toHaveLength(1);

      h = await startHarness({ dataDir });
      try {
        expect((await h.iot.send(new GetRegistrationCodeCommand({}))).registrationCode).toBe(
          registrationCode,
        );
        const described = await h.iot.send(new DescribeThingCommand({ thingName: "persisted" }));
        expect(described.thingId).toBe(thing.thingId);
        expect(described.attributes).toEqual({ a: "b" });
        expect(
          (await h.iot.send(new GetPolicyCommand({ policyName: "persisted-policy" }))).policyDocument,
        ).toBe(allowAll);
        const caOut = await h.iot.send(new DescribeCACertificateCommand({ certificateId: ca.id }));
        expect(caOut.certificateDescription?.autoRegistrationStatus).toBe("ENABLE");
        expect(h.endpoint.iot.describeCertificateById(device.id)?.status).toBe("PENDING_ACTIVATION");
        expect((await h.endpoint.iot.findCaForCertificate(device.pem))?.caCertificateId).toBe(ca.id);
        const item = await h.dynamodb.send(
          new GetItemCommand({ TableName: "persisted", Key: { pk: { S: "k" } } }),
        );
        expect(item.Item?.n).toEqual({ N: "42" });
      } finally {
        await h.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("quotas", () => {
  it("refills a token bucket at rate * factor per second", () => {
    let now = 0;
    const limiter = new RateLimiter(true, 0.2, () => now);
    // GetPolicy: 10/s * 0.2 = 2 tokens, 2 per second.
    expect([1, 2, 3].map(() => limiter.tryAcquire("GetPolicy"))).toEqual([true, true, false]);
    now = 499;
    expect(limiter.tryAcquire("GetPolicy")).toBe(false);
    now = 501;
    expect(limiter.tryAcquire("GetPolicy")).toBe(true);
    // Unlisted operations default to 20/s: 4 tokens with this factor.
    expect(Array.from({ length: 5 }, () => limiter.tryAcquire("ListThings"))).toEqual([
      true,
      true,
      true,
      true,
      false,
    ]);
    expect(new RateLimiter(false).tryAcquire("GetPolicy")).toBe(true);
    expect(() => new RateLimiter(true, 0)).toThrow();
  });

  it("throttles a burst beyond the per-operation quota with ThrottlingException", async () => {
    const h = await startHarness({ quotas: { enabled: true, factor: 0.2 } });
    try {
      await h.iot.send(new CreatePolicyCommand({ policyName: "q", policyDocument: allowAll }));
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => h.iot.send(new GetPolicyCommand({ policyName: "q" }))),
      );
      const ok = results.filter((r) => r.status === "fulfilled");
      const throttled = results.filter(
        (r) => r.status === "rejected" && r.reason instanceof ThrottlingException,
      );
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(ok.length).toBeLessThanOrEqual(3);
      expect(ok.length + throttled.length).toBe(8);
      // Another operation has its own bucket (DescribeThing: 350/s * 0.2).
      await h.iot.send(new CreateThingCommand({ thingName: "q-thing" }));
      expect((await h.iot.send(new DescribeThingCommand({ thingName: "q-thing" }))).thingName).toBe(
        "q-thing",
      );
      // DynamoDB is never throttled by the IoT quotas.
      for (let i = 0; i < 10; i++) await h.dynamodb.send(new ListTablesCommand({}));
    } finally {
      await h.close();
    }
  });

  it("throttles auto-registration beyond 15/s * factor", async () => {
    const h = await startHarness({ quotas: { enabled: true, factor: 0.1 } });
    try {
      const ca = await createCa({ commonName: "Quota CA" });
      const verification = await verificationCertificate(ca, h.endpoint.iot.getRegistrationCode());
      await h.endpoint.iot.registerCACertificate({
        caCertificate: ca.pem,
        verificationCertificate: verification.pem,
        setAsActive: true,
        allowAutoRegistration: true,
      });
      const devices = await Promise.all(
        [1, 2, 3].map((i) => issueCertificate(ca, { commonName: `burst-${i}` })),
      );
      const results = await Promise.allSettled(
        devices.map((d) => h.endpoint.iot.autoRegisterCertificate(d.pem, ca.id)),
      );
      const rejected = results
        .filter((r) => r.status === "rejected")
        .map((r) => (r as PromiseRejectedResult).reason);
      expect(results[0]?.status).toBe("fulfilled");
      expect(rejected.length).toBeGreaterThanOrEqual(1);
      for (const reason of rejected) {
        expect(reason).toBeInstanceOf(IotError);
        expect((reason as IotError).code).toBe("ThrottlingException");
      }
      const registered = devices.filter((d) => h.endpoint.iot.describeCertificateById(d.id) !== undefined);
      expect(registered).toHaveLength(3 - rejected.length);
    } finally {
      await h.close();
    }
  });
});

describe("faults", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (key.startsWith("JITR_LOCAL_")) delete process.env[key];
    Object.assign(process.env, saved);
  });

  it("throttles every IoT call with throttleRate 1, but not DynamoDB", async () => {
    const h = await startHarness({ faults: { throttleRate: 1 } });
    try {
      for (let i = 0; i < 3; i++)
        await expect(h.iot.send(new ListThingsCommand({}))).rejects.toBeInstanceOf(ThrottlingException);
      expect((await h.dynamodb.send(new ListTablesCommand({}))).TableNames).toEqual([]);
      expect(h.endpoint.iot.describeThingByName("x")).toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it("answers 500 InternalFailureException or 503 ServiceUnavailableException with serverErrorRate 1", async () => {
    const h = await startHarness({ faults: { serverErrorRate: 1 } });
    try {
      const errors = await Promise.all(
        Array.from({ length: 12 }, () => h.iot.send(new ListThingsCommand({})).catch((e: unknown) => e)),
      );
      for (const e of errors) {
        expect(e instanceof InternalFailureException || e instanceof ServiceUnavailableException).toBe(true);
      }
      const statuses = new Set(errors.map((e) => (e as IoTServiceException).$metadata.httpStatusCode));
      for (const s of statuses) expect([500, 503]).toContain(s);
    } finally {
      await h.close();
    }
  });

  it("adds latency", async () => {
    const h = await startHarness({ faults: { latencyMs: 150 } });
    try {
      const start = performance.now();
      await h.iot.send(new ListThingsCommand({}));
      expect(performance.now() - start).toBeGreaterThanOrEqual(140);
    } finally {
      await h.close();
    }
  });

  it("reads faults and quotas from JITR_LOCAL_* variables when options do not set them", async () => {
    process.env.JITR_LOCAL_FAULT_THROTTLE_RATE = "1";
    let endpoint = await startAwsEndpoint({ port: 0 });
    const { IoTClient } = await import("@aws-sdk/client-iot");
    const client = (url: string) =>
      new IoTClient({
        endpoint: url,
        region: "us-east-1",
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
        maxAttempts: 1,
      });
    try {
      await expect(client(endpoint.url).send(new ListThingsCommand({}))).rejects.toBeInstanceOf(
        ThrottlingException,
      );
    } finally {
      await endpoint.close();
    }
    delete process.env.JITR_LOCAL_FAULT_THROTTLE_RATE;
    process.env.JITR_LOCAL_QUOTAS = "1";
    process.env.JITR_LOCAL_QUOTA_FACTOR = "0.1";
    endpoint = await startAwsEndpoint({ port: 0 });
    try {
      const iot = client(endpoint.url);
      // GetRegistrationCode is unlisted: 20/s * 0.1 = 2 tokens.
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, () => iot.send(new GetRegistrationCodeCommand({}))),
      );
      expect(
        results.filter((r) => r.status === "rejected" && r.reason instanceof ThrottlingException).length,
      ).toBe(3);
    } finally {
      await endpoint.close();
    }
    process.env.JITR_LOCAL_FAULT_THROTTLE_RATE = "2";
    await expect(startAwsEndpoint({ port: 0 })).rejects.toThrow(/between 0 and 1/);
  });
});

describe("keep-alive", () => {
  it("keeps idle sockets open longer than a client keeps them, so a reused socket is not closed under a request", async () => {
    // Prepare
    const endpoint = await startAwsEndpoint({ port: 0 });
    try {
      // Act
      const response = await fetch(`${endpoint.url}/things`, { headers: { ...signed("iot") } });
      await response.arrayBuffer();

      // Assess: Node announces the server's idle timeout in seconds (its default is 5).
      expect(response.headers.get("keep-alive")).toBe(`timeout=${LOCAL_KEEP_ALIVE_MS / 1000}`);
      expect(LOCAL_KEEP_ALIVE_MS).toBeGreaterThanOrEqual(60_000);
    } finally {
      await endpoint.close();
    }
  });
});
