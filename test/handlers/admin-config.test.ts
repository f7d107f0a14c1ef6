import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../domain/errors.ts";
import { readAdminConfig } from "../../handlers/admin-config.ts";

describe("readAdminConfig", () => {
  const env = {
    JITR_ALLOWLIST_TABLE: "a",
    JITR_MAPPINGS_TABLE: "m",
    JITR_LOTS_TABLE: "l",
    JITR_LEDGER_TABLE: "g",
    JITR_ACCOUNT_ID: "123456789012",
    AWS_REGION: "eu-west-1",
  };

  it("reads the tables and settings without an idempotency table", () => {
    // Prepare: env has no JITR_IDEMPOTENCY_TABLE

    // Act
    const config = readAdminConfig(env);

    // Assess
    expect(config.tables).toEqual({ allowlist: "a", mappings: "m", lots: "l", ledger: "g" });
    expect(config.settings).toMatchObject({
      region: "eu-west-1",
      accountId: "123456789012",
      policyPrefix: "jitr-",
    });
  });

  it.each(["JITR_ALLOWLIST_TABLE", "JITR_LEDGER_TABLE", "AWS_REGION", "JITR_ACCOUNT_ID"])(
    "fails fast naming %s when it is missing",
    (name) => {
      // Prepare
      const partial: Record<string, string> = { ...env };
      delete partial[name];

      // Act
      const read = () => readAdminConfig(partial);

      // Assess
      expect(read).toThrow(ConfigurationError);
      expect(read).toThrow(name);
    },
  );
});
