import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeCertificateCommand, IoTClient, ThrottlingException } from "@aws-sdk/client-iot";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigurationError, ThrottlingError } from "../../domain/errors.ts";
import { quotaOf } from "../../domain/rate.ts";
import { readProvisioningConfig } from "../../handlers/config.ts";
import { buildProvisioning } from "../../handlers/wiring.ts";

const env = {
  AWS_REGION: "eu-west-1",
  JITR_ACCOUNT_ID: "111122223333",
  JITR_ALLOWLIST_TABLE: "a",
  JITR_MAPPINGS_TABLE: "m",
  JITR_LOTS_TABLE: "l",
  JITR_LEDGER_TABLE: "g",
  JITR_IDEMPOTENCY_TABLE: "i",
};

describe("readProvisioningConfig", () => {
  it("reads the tables and settings, with sensible defaults", () => {
    const config = readProvisioningConfig(env);
    expect(config.tables).toEqual({
      allowlist: "a",
      mappings: "m",
      lots: "l",
      ledger: "g",
      idempotency: "i",
    });
    expect(config.settings).toMatchObject({
      region: "eu-west-1",
      accountId: "111122223333",
      policyPrefix: "jitr-",
      deviceIdStrategy: "cn",
    });
    expect(config.idempotencyTtlSeconds).toBe(3600);
  });

  it.each(Object.keys(env))("fails fast naming the missing variable %s", (name) => {
    const { [name]: _gone, ...rest } = env as Record<string, string>;
    expect(() => readProvisioningConfig(rest)).toThrow(
      new ConfigurationError(`environment variable ${name} is required`),
    );
  });

  it.each([
    ["JITR_DEVICE_ID_STRATEGY", "imei"],
    ["JITR_ACCOUNT_ID", "12"],
    ["JITR_POLICY_PREFIX", "bad prefix!"],
    ["JITR_RETRY_ATTEMPTS", "0"],
    ["JITR_IDEMPOTENCY_TTL_SECONDS", "soon"],
  ])("refuses an invalid %s, naming it", (name, value) => {
    expect(() => readProvisioningConfig({ ...env, [name]: value })).toThrow(name);
  });
});

describe("JITR_QUARANTINE", () => {
  it("defaults to inactive, takes revoke, refuses anything else naming the variable", () => {
    expect(readProvisioningConfig(env).settings.quarantine).toBe("inactive");
    expect(readProvisioningConfig({ ...env, JITR_QUARANTINE: "revoke" }).settings.quarantine).toBe("revoke");
    expect(() => readProvisioningConfig({ ...env, JITR_QUARANTINE: "delete" })).toThrow("JITR_QUARANTINE");
  });
});

describe("JITR_IOT_QUOTAS and JITR_PROVISION_CONCURRENCY", () => {
  it("default to the published quotas and the deployed concurrency cap", () => {
    const config = readProvisioningConfig(env);
    expect(quotaOf(config.iotQuotas, "UpdateCertificate")).toBe(10);
    expect(config.provisionConcurrency).toBe(4);
  });

  it("take the account's figures", () => {
    const config = readProvisioningConfig({
      ...env,
      JITR_IOT_QUOTAS: '{"factor":2,"DescribeCertificate":50}',
      JITR_PROVISION_CONCURRENCY: "5",
    });
    expect(quotaOf(config.iotQuotas, "UpdateCertificate")).toBe(20);
    expect(quotaOf(config.iotQuotas, "DescribeCertificate")).toBe(100);
    expect(config.provisionConcurrency).toBe(5);
  });

  it.each([
    ["JITR_IOT_QUOTAS", "{factor:2}", /^JITR_IOT_QUOTAS must be a JSON object/],
    ["JITR_IOT_QUOTAS", '{"factor":0}', /^JITR_IOT_QUOTAS factor must be a positive number/],
    ["JITR_PROVISION_CONCURRENCY", "0", /^JITR_PROVISION_CONCURRENCY must be a whole number/],
  ])("refuses a bad %s naming the variable", (name, value, message) => {
    expect(() => readProvisioningConfig({ ...env, [name]: value })).toThrow(ConfigurationError);
    expect(() => readProvisioningConfig({ ...env, [name]: value })).toThrow(message);
  });
});

describe("buildProvisioning: the IoT port is paced by the quotas", () => {
  afterEach(() => vi.useRealTimers());

  it("spaces calls of an operation by its rate and backs off after a ThrottlingException", async () => {
    // Prepare: DescribeCertificate at 10 x 0.1 = 1 request per second, one instance
    vi.useFakeTimers();
    const iot = mockClient(IoTClient);
    const config = readProvisioningConfig({
      ...env,
      JITR_IOT_QUOTAS: '{"factor":0.1}',
      JITR_PROVISION_CONCURRENCY: "1",
    });
    const clients = {
      iot: new IoTClient({ region: "eu-west-1" }),
      dynamo: new DynamoDBClient({ region: "eu-west-1" }),
    };
    const port = buildProvisioning(config, clients).provision.iot;
    iot
      .on(DescribeCertificateCommand)
      .rejectsOnce(new ThrottlingException({ message: "slow down", $metadata: { httpStatusCode: 400 } }));
    iot
      .on(DescribeCertificateCommand)
      .rejectsOnce(new ThrottlingException({ message: "slow down", $metadata: { httpStatusCode: 400 } }))
      .resolves({});
    const settled = (p: Promise<unknown>) => {
      let done = false;
      void p.then(
        () => {
          done = true;
        },
        () => {
          done = true;
        },
      );
      return () => done;
    };

    // Act
    await expect(port.describeCertificate("a".repeat(64))).rejects.toBeInstanceOf(ThrottlingError);
    const second = settled(port.describeCertificate("b".repeat(64)));
    await vi.advanceTimersByTimeAsync(900);
    const earlyAfterOneSecond = second();
    await vi.advanceTimersByTimeAsync(600);
    const afterOneAndAHalf = second();

    // Assess: the throttle cut 1/s to 0.7/s, so the next token comes after ~1.43 s
    expect(earlyAfterOneSecond).toBe(false);
    expect(afterOneAndAHalf).toBe(true);
    expect(iot).toHaveReceivedCommandTimes(DescribeCertificateCommand, 2);
  });
});
