import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../domain/errors.ts";
import { readProvisioningConfig } from "../../handlers/config.ts";

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
