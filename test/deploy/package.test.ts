/**
 * The deployable stack, checked offline: packages serverless.yml once with osls (no AWS credentials, no
 * AWS calls; esbuild bundles the functions) and reads the generated CloudFormation and function zips.
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tableDefinitions } from "../../adapters/tables.ts";
import { DEPLOYED_RULE_PATH } from "../../bench/service.ts";
import { defaultIotQuotas, parseIotQuotas } from "../../domain/rate.ts";
import { readAdminConfig } from "../../handlers/admin-config.ts";
import { DEFAULT_PROVISION_CONCURRENCY, readProvisioningConfig } from "../../handlers/config.ts";
import { readZip, type ZipEntry } from "../../scripts/package-zip.ts";
import { type Grant, grantsOf } from "./reachable.ts";
import { evaluate, iamStatements, props, resourcesOfType, type Template } from "./template.ts";

const root = resolve(import.meta.dirname, "..", "..");
const osls = join(
  dirname(createRequire(import.meta.url).resolve("osls/package.json")),
  "bin",
  "serverless.js",
);

const CA_1 = "a".repeat(64);
const CA_2 = "b".repeat(64);
const EXISTING_POLICY = "legacy-sensor-policy";

/** Strings only the local stack (local/aws) contains: none may reach a deployed bundle. */
const LOCAL_ONLY_STRINGS = [
  "Missing SigV4 Authorization header",
  "Auto-registration rate exceeded for the account",
];

/** An environment that lets osls package without credentials, profiles or instance metadata. */
function offlineEnv(workFolder: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: "offline-packaging",
    AWS_SECRET_ACCESS_KEY: "offline-packaging",
    AWS_EC2_METADATA_DISABLED: "true",
    SLS_TELEMETRY_DISABLED: "1",
    SLS_NOTIFICATIONS_MODE: "off",
    JITR_ESBUILD_WORK_FOLDER: workFolder,
  };
  for (const name of [
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
  ]) {
    delete env[name];
  }
  return env;
}

function runOsls(args: string[], workFolder: string): string {
  const run = spawnSync(process.execPath, [osls, ...args], {
    cwd: root,
    env: offlineEnv(workFolder),
    encoding: "utf8",
    timeout: 200_000,
  });
  if (run.status !== 0) {
    throw new Error(
      `osls ${args.join(" ")} failed (${run.status ?? run.signal}):\n${run.stdout}\n${run.stderr}`,
    );
  }
  return run.stdout;
}

let outDir: string;
let workFolder: string;
let template: Template;
let packagingSeconds: number;

beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), "jitr-package-"));
  // serverless-esbuild's work folder lives in the project; a private one lets this run beside `npm run package`.
  workFolder = join(".esbuild", `test-${process.pid}-${Date.now()}`);
  const started = Date.now();
  runOsls(
    [
      "package",
      "--stage",
      "dev",
      "--package",
      outDir,
      "--param",
      `caCertificateIds=${CA_1},${CA_2}`,
      "--param",
      `existingPolicyNames=${EXISTING_POLICY}`,
    ],
    workFolder,
  );
  packagingSeconds = (Date.now() - started) / 1000;
  template = JSON.parse(readFileSync(join(outDir, "cloudformation-template-update-stack.json"), "utf8"));
}, 240_000);

afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
  if (workFolder) {
    rmSync(join(root, workFolder), { recursive: true, force: true });
    rmSync(join(root, `${workFolder}-smoke`), { recursive: true, force: true });
    // .esbuild/ itself only when nobody else is using it.
    const shared = join(root, ".esbuild");
    if (existsSync(shared) && readdirSync(shared).length === 0) rmdirSync(shared);
  }
});

type FunctionName = "Provision" | "Admin" | "JobWorker";
const functionProps = (name: FunctionName) => props(template, `${name}LambdaFunction`);
const environmentOf = (name: FunctionName) =>
  (functionProps(name).Environment as { Variables: Record<string, unknown> }).Variables;

describe("packaging", () => {
  it("packages offline within the time budget", () => {
    // Prepare / Act: beforeAll. Assess:
    expect(packagingSeconds).toBeLessThan(120);
    expect(Object.keys(template.Resources).length).toBeGreaterThan(20);
  });
});

describe("event path: topic rule -> queue -> provisioning function -> dead-letter queue", () => {
  it("one topic rule takes the registration events of the configured CAs (SQL 2016-03-23)", () => {
    const rules = resourcesOfType(template, "AWS::IoT::TopicRule");
    expect(Object.keys(rules)).toEqual(["ProvisionTopicRule"]);

    const payload = props(template, "ProvisionTopicRule").TopicRulePayload as Record<string, unknown>;

    expect(payload.AwsIotSqlVersion).toBe("2016-03-23");
    expect(payload.RuleDisabled).toBe(false);
    expect(evaluate(payload.Sql)).toBe(
      `SELECT * FROM '$aws/events/certificates/registered/+' WHERE caCertificateId = '${CA_1}' OR caCertificateId = '${CA_2}'`,
    );
  });

  it("the rule sends to the provisioning queue with a role that may only send there, and has an error action", () => {
    const payload = props(template, "ProvisionTopicRule").TopicRulePayload as {
      Actions: { Sqs?: { QueueUrl: unknown; RoleArn: unknown } }[];
      ErrorAction?: { CloudwatchLogs?: { LogGroupName: unknown; RoleArn: unknown } };
    };

    expect(payload.Actions).toHaveLength(1);
    expect(evaluate(payload.Actions[0]?.Sqs?.QueueUrl)).toBe("Ref:ProvisionQueue");
    expect(evaluate(payload.Actions[0]?.Sqs?.RoleArn)).toBe("GetAtt:TopicRuleRole.Arn");
    expect(evaluate(payload.ErrorAction?.CloudwatchLogs?.LogGroupName)).toBe("Ref:TopicRuleErrorLogGroup");
    expect(evaluate(payload.ErrorAction?.CloudwatchLogs?.RoleArn)).toBe("GetAtt:TopicRuleRole.Arn");

    const ruleStatements = iamStatements(template).filter((s) => s.where.startsWith("TopicRuleRole/"));
    const sqs = ruleStatements.filter((s) => s.Action.some((a) => a.startsWith("sqs:")));
    expect(sqs).toEqual([
      expect.objectContaining({ Action: ["sqs:SendMessage"], Resource: ["GetAtt:ProvisionQueue.Arn"] }),
    ]);
    for (const statement of ruleStatements.filter((s) => s.Action.some((a) => a.startsWith("logs:")))) {
      expect(statement.Resource.every((r) => r.includes("TopicRuleErrorLogGroup"))).toBe(true);
    }
    const assumedBy = (props(template, "TopicRuleRole").AssumeRolePolicyDocument as { Statement: unknown[] })
      .Statement[0];
    expect(assumedBy).toMatchObject({ Principal: { Service: "iot.amazonaws.com" } });
  });

  it("the queue feeds the provisioning function in small batches with partial failures and a concurrency cap", () => {
    const mappings = Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping")).filter(
      (m) => evaluate(m.Properties?.EventSourceArn) === "GetAtt:ProvisionQueue.Arn",
    );
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]?.Properties ?? {};

    expect(evaluate(mapping.EventSourceArn)).toBe("GetAtt:ProvisionQueue.Arn");
    expect(evaluate(mapping.FunctionName)).toBe("GetAtt:ProvisionLambdaFunction.Arn");
    expect(mapping.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
    const { MaximumConcurrency } = mapping.ScalingConfig as { MaximumConcurrency: number };
    const batchSize = mapping.BatchSize as number;
    expect(MaximumConcurrency).toBeGreaterThanOrEqual(2);
    expect(batchSize).toBeGreaterThanOrEqual(1);
    // The function paces its IoT calls by the quotas (domain/rate.ts), so records in flight no longer have
    // to fit the quota; the cap keeps each instance's starting share of AWS's default 10 requests/s at one
    // request/s or more.
    expect(MaximumConcurrency).toBeLessThanOrEqual(10);
  });

  it("the provisioning function is paced by the account's quotas and knows how many instances share them", () => {
    const mapping =
      Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping"))[0]?.Properties ?? {};
    const { MaximumConcurrency } = mapping.ScalingConfig as { MaximumConcurrency: number };
    const env = environmentOf("Provision");

    expect(parseIotQuotas(String(env.JITR_IOT_QUOTAS))).toEqual(defaultIotQuotas);
    expect(Number(env.JITR_PROVISION_CONCURRENCY)).toBe(MaximumConcurrency);
  });

  it("the defaults that stand for the deployed rule path (the function's, local mode's, the benchmark's) are the stack's", () => {
    const mapping =
      Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping"))[0]?.Properties ?? {};
    const { MaximumConcurrency } = mapping.ScalingConfig as { MaximumConcurrency: number };
    const queue = props(template, "ProvisionQueue");
    const redrive = queue.RedrivePolicy as { maxReceiveCount: number };

    expect(DEFAULT_PROVISION_CONCURRENCY).toBe(MaximumConcurrency);
    expect(DEPLOYED_RULE_PATH).toEqual({
      batchSize: mapping.BatchSize,
      maxConcurrency: MaximumConcurrency,
      maxReceiveCount: redrive.maxReceiveCount,
      visibilityTimeoutMs: (queue.VisibilityTimeout as number) * 1000,
    });
  });

  it("the queue's visibility timeout is at least 6 x the function timeout, and failures dead-letter", () => {
    const queue = props(template, "ProvisionQueue");
    const redrive = queue.RedrivePolicy as { deadLetterTargetArn: unknown; maxReceiveCount: number };

    expect(queue.VisibilityTimeout as number).toBeGreaterThanOrEqual(
      6 * (functionProps("Provision").Timeout as number),
    );
    expect(evaluate(redrive.deadLetterTargetArn)).toBe("GetAtt:ProvisionDeadLetterQueue.Arn");
    expect(redrive.maxReceiveCount).toBeGreaterThanOrEqual(3);
    expect(redrive.maxReceiveCount).toBeLessThanOrEqual(10);
    expect(props(template, "ProvisionDeadLetterQueue").MessageRetentionPeriod).toBe(1_209_600);
    expect(evaluate(template.Outputs?.RedriveCommand?.Value)).toContain("aws sqs start-message-move-task");
  });
});

describe("jobs: admin function -> jobs queue -> job worker; files in the job bucket", () => {
  it("the jobs queue feeds the worker one job a message, with partial failures and a concurrency cap", () => {
    const mappings = Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping")).filter(
      (m) => evaluate(m.Properties?.EventSourceArn) === "GetAtt:JobsQueue.Arn",
    );

    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]?.Properties ?? {};
    expect(evaluate(mapping.FunctionName)).toBe("GetAtt:JobWorkerLambdaFunction.Arn");
    expect(mapping.BatchSize).toBe(1);
    expect(mapping.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
    const { MaximumConcurrency } = mapping.ScalingConfig as { MaximumConcurrency: number };
    expect(MaximumConcurrency).toBeGreaterThanOrEqual(2);
    expect(MaximumConcurrency).toBeLessThanOrEqual(5);
    expect(functionProps("JobWorker").Handler).toBe("handlers/job-worker-entry.handler");
  });

  it("a message is not handed out again while the worker may run it, and failing ones dead-letter", () => {
    const queue = props(template, "JobsQueue");
    const redrive = queue.RedrivePolicy as { deadLetterTargetArn: unknown; maxReceiveCount: number };

    expect(queue.VisibilityTimeout as number).toBeGreaterThan(functionProps("JobWorker").Timeout as number);
    expect(functionProps("JobWorker").Timeout as number).toBeGreaterThan(60);
    expect(evaluate(redrive.deadLetterTargetArn)).toBe("GetAtt:JobsDeadLetterQueue.Arn");
    expect(redrive.maxReceiveCount).toBeGreaterThanOrEqual(3);
    expect(queue.SqsManagedSseEnabled).toBe(true);
    expect(props(template, "JobsDeadLetterQueue").SqsManagedSseEnabled).toBe(true);
    expect(evaluate(template.Outputs?.JobsRedriveCommand?.Value)).toContain("JobsDeadLetterQueue.Arn");
  });

  it("the job bucket is private, encrypted, TLS-only, and its files expire", () => {
    const bucket = props(template, "JobsBucket");
    const lifecycle = (bucket.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    const policy = iamStatements(template).filter((s) => s.where.startsWith("JobsBucketPolicy"));
    const tls = (
      props(template, "JobsBucketPolicy").PolicyDocument as { Statement: { Condition?: unknown }[] }
    ).Statement[0];

    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.BucketEncryption).toBeDefined();
    expect(bucket.CorsConfiguration).toBeUndefined();
    expect(lifecycle).toEqual([
      expect.objectContaining({
        Status: "Enabled",
        ExpirationInDays: expect.any(Number),
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      }),
    ]);
    expect(policy).toEqual([
      {
        where: "JobsBucketPolicy (TlsOnly)",
        Effect: "Deny",
        Action: ["s3:*"],
        Resource: ["GetAtt:JobsBucket.Arn", "${JobsBucket.Arn}/*"],
      },
    ]);
    expect(tls?.Condition).toEqual({ Bool: { "aws:SecureTransport": "false" } });
  });

  it("the admin function presigns uploads and downloads, the worker reads uploads and writes exports, nothing more", () => {
    const s3 = (roleId: string) =>
      iamStatements(template)
        .filter((s) => s.where.startsWith(`${roleId}/`))
        .flatMap((s) =>
          s.Action.filter((a) => a.startsWith("s3:")).flatMap((a) => s.Resource.map((r) => `${a} ${r}`)),
        )
        .sort();

    expect(s3("AdminRole")).toEqual([
      "s3:GetObject ${JobsBucket.Arn}/exports/*",
      "s3:GetObject ${JobsBucket.Arn}/uploads/*",
      "s3:PutObject ${JobsBucket.Arn}/uploads/*",
    ]);
    expect(s3("JobWorkerRole")).toEqual([
      "s3:GetObject ${JobsBucket.Arn}/uploads/*",
      "s3:PutObject ${JobsBucket.Arn}/exports/*",
    ]);
  });
});

describe("alarms", () => {
  const alarms = () =>
    Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm")).map((alarm) => {
      const p = alarm.Properties ?? {};
      const dimensions = ((p.Dimensions as { Name: string; Value: unknown }[] | undefined) ?? []).map((d) => [
        d.Name,
        evaluate(d.Value),
      ]);
      return { namespace: p.Namespace, metric: p.MetricName, dimensions: Object.fromEntries(dimensions) };
    });

  it("watch the dead-letter depth, the Failed metric, and the function's errors and throttles", () => {
    const provisionEnv = environmentOf("Provision");
    const provisionName = functionProps("Provision").FunctionName;

    expect(alarms()).toEqual(
      expect.arrayContaining([
        {
          namespace: "AWS/SQS",
          metric: "ApproximateNumberOfMessagesVisible",
          dimensions: { QueueName: "GetAtt:ProvisionDeadLetterQueue.QueueName" },
        },
        {
          namespace: provisionEnv.POWERTOOLS_METRICS_NAMESPACE,
          metric: "Failed",
          dimensions: { service: provisionEnv.POWERTOOLS_SERVICE_NAME },
        },
        { namespace: "AWS/Lambda", metric: "Errors", dimensions: { FunctionName: provisionName } },
        { namespace: "AWS/Lambda", metric: "Throttles", dimensions: { FunctionName: provisionName } },
      ]),
    );
  });
});

describe("admin API", () => {
  const DESIGN_ROUTES = [
    "GET /allowlist",
    "GET /allowlist/{deviceId}",
    "PUT /allowlist/{deviceId}",
    "DELETE /allowlist/{deviceId}",
    "POST /allowlist/import",
    "GET /allowlist/export",
    "GET /mappings",
    "GET /mappings/{selector}",
    "PUT /mappings/{selector}",
    "DELETE /mappings/{selector}",
    "GET /lots",
    "GET /lots/{lot}",
    "PUT /lots/{lot}",
    "DELETE /lots/{lot}",
    "POST /explain",
    "POST /devices/{deviceId}/approve",
    "POST /devices/{deviceId}/deprovision",
    "GET /devices/{deviceId}/history",
    "GET /ledger",
    "GET /approvals",
    "GET /mappings/{selector}/history",
    "GET /lots/{lot}/history",
    "POST /reconcile",
    // Jobs
    "POST /uploads",
    "POST /allowlist/import-jobs",
    "POST /allowlist/export-jobs",
    "GET /jobs",
    "GET /jobs/{id}",
    "POST /jobs/{id}/cancel",
    "POST /reconcile-jobs",
    "POST /block-jobs",
  ];

  it("is an HTTP API whose every route (those of DESIGN section 8) needs SigV4 (AWS_IAM)", () => {
    const routes = Object.values(resourcesOfType(template, "AWS::ApiGatewayV2::Route")).map(
      (r) => r.Properties ?? {},
    );

    expect(routes.map((route) => route.RouteKey).sort()).toEqual([...DESIGN_ROUTES].sort());
    for (const route of routes) expect(route.AuthorizationType, String(route.RouteKey)).toBe("AWS_IAM");
    expect(Object.keys(resourcesOfType(template, "AWS::ApiGatewayV2::Api"))).toEqual(["HttpApi"]);
    expect(functionProps("Admin").Handler).toBe("handlers/admin-entry.handler");
  });
});

describe("tables", () => {
  const tables = () => Object.values(resourcesOfType(template, "AWS::DynamoDB::Table"));

  it("have the keys and indexes of adapters/tables.ts, on demand, with point-in-time recovery and encryption", () => {
    const env = environmentOf("Provision");
    const definitions = tableDefinitions({
      allowlist: String(env.JITR_ALLOWLIST_TABLE),
      mappings: String(env.JITR_MAPPINGS_TABLE),
      lots: String(env.JITR_LOTS_TABLE),
      ledger: String(env.JITR_LEDGER_TABLE),
      idempotency: String(env.JITR_IDEMPOTENCY_TABLE),
      jobs: String(environmentOf("JobWorker").JITR_JOBS_TABLE),
    });
    const byName = new Map(tables().map((table) => [table.Properties?.TableName, table.Properties ?? {}]));
    const sortByName = <T extends { AttributeName: string }>(list: T[] | undefined) =>
      [...(list ?? [])].sort((a, b) => a.AttributeName.localeCompare(b.AttributeName));

    expect(byName.size).toBe(6);
    for (const definition of definitions) {
      const table = byName.get(definition.TableName);
      expect(table, definition.TableName).toBeDefined();
      expect(table?.BillingMode).toBe("PAY_PER_REQUEST");
      expect(table?.KeySchema).toEqual(definition.KeySchema);
      expect(sortByName(table?.AttributeDefinitions as { AttributeName: string }[])).toEqual(
        sortByName(definition.AttributeDefinitions as { AttributeName: string }[]),
      );
      expect(table?.GlobalSecondaryIndexes ?? []).toEqual(definition.GlobalSecondaryIndexes ?? []);
      expect(table?.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table?.SSESpecification).toEqual({ SSEEnabled: true });
    }
  });

  it("expire idempotency records by TTL on `expiration`", () => {
    expect(props(template, "IdempotencyTable").TimeToLiveSpecification).toEqual({
      AttributeName: "expiration",
      Enabled: true,
    });
  });

  it("can be deleted in dev; outside dev they are deletion-protected and retained", () => {
    for (const table of tables()) {
      expect(table.Properties?.DeletionProtectionEnabled).toBe(false);
      expect(table.DeletionPolicy).toBe("Delete");
    }

    // Resolving (not packaging) the prod stage is enough to see its settings.
    const prod = JSON.parse(
      runOsls(
        ["print", "--stage", "prod", "--param", `caCertificateIds=${CA_1}`, "--format", "json"],
        workFolder,
      ),
    ) as { resources: Template };
    const prodTables = Object.values(resourcesOfType(prod.resources, "AWS::DynamoDB::Table"));

    expect(prodTables).toHaveLength(6);
    for (const table of prodTables) {
      expect(table.Properties?.DeletionProtectionEnabled).toBe(true);
      expect(table.DeletionPolicy).toBe("Retain");
    }
  }, 60_000);
});

describe("IAM", () => {
  /** Which resource type each IoT action authorizes on (AWS Service Authorization Reference for AWS IoT). */
  const AUTHORIZES_ON: Record<string, string[]> = {
    "iot:DescribeCertificate": ["cert"],
    "iot:UpdateCertificate": ["cert"],
    "iot:AttachPolicy": ["cert", "thinggroup"],
    "iot:DetachPolicy": ["cert", "thinggroup"],
    "iot:AttachThingPrincipal": ["cert"],
    "iot:DetachThingPrincipal": ["cert"],
    "iot:ListAttachedPolicies": ["cert", "thinggroup"],
    "iot:ListPrincipalThings": ["cert"],
    "iot:DescribeThing": ["thing"],
    "iot:CreateThing": ["thing"],
    "iot:UpdateThing": ["thing"],
    "iot:DeleteThing": ["thing"],
    "iot:AddThingToThingGroup": ["thing", "thinggroup"],
    "iot:ListThingPrincipals": ["thing"],
    "iot:ListThingGroupsForThing": ["thing"],
    "iot:RemoveThingFromThingGroup": ["thing", "thinggroup"],
    "iot:DescribeThingType": ["thingtype"],
    "iot:DescribeThingGroup": ["thinggroup"],
    "iot:GetPolicy": ["policy"],
    "iot:CreatePolicy": ["policy"],
    "iot:ListPolicyVersions": ["policy"],
    "iot:CreatePolicyVersion": ["policy"],
    "iot:DeletePolicyVersion": ["policy"],
    "iot:DeletePolicy": ["policy"],
  };
  /** What each function's code can send, derived from it (test/deploy/reachable.ts), by role. */
  const ENTRY_OF_ROLE = {
    ProvisionRole: "handlers/provision-entry.ts",
    AdminRole: "handlers/admin-entry.ts",
    JobWorkerRole: "handlers/job-worker-entry.ts",
  } as const;
  let derived: Map<string, Grant[]>;
  beforeAll(() => {
    derived = grantsOf(Object.values(ENTRY_OF_ROLE));
  }, 120_000);
  const needed = (roleId: keyof typeof ENTRY_OF_ROLE) =>
    (derived.get(ENTRY_OF_ROLE[roleId]) ?? []).map((g) => `${g.action} on ${g.resource}`).sort();

  const IOT_ARN =
    /^arn:(?:\$\{AWS::Partition\}|aws):iot:(?:\$\{AWS::Region\}|[a-z0-9-]+):(?:\$\{AWS::AccountId\}|\*):(cert|thing|thinggroup|thingtype|policy)\/(.+)$/;

  const statementsOf = (roleId: string) =>
    iamStatements(template).filter((s) => s.where.startsWith(`${roleId}/`));

  it("allows no wildcard action anywhere (`*` or `service:*`)", () => {
    const allows = iamStatements(template).filter((s) => s.Effect === "Allow");

    expect(allows.length).toBeGreaterThan(10);
    for (const statement of allows) {
      for (const action of statement.Action) expect(action, statement.where).not.toContain("*");
    }
    // The only Denies are the buckets' guards refusing s3:* over plain HTTP (the framework's and the jobs').
    for (const deny of iamStatements(template).filter((s) => s.Effect !== "Allow")) {
      expect(["ServerlessDeploymentBucketPolicy", "JobsBucketPolicy (TlsOnly)"]).toContain(deny.where);
    }
  });

  it("scopes every IoT statement to the resource type its actions authorize on, never to `*`", () => {
    const iot = iamStatements(template).filter((s) => s.Action.some((a) => a.startsWith("iot:")));

    expect(iot.length).toBeGreaterThan(0);
    for (const statement of iot) {
      expect(statement.Resource.length, statement.where).toBeGreaterThan(0);
      for (const resource of statement.Resource) {
        const match = IOT_ARN.exec(resource);
        expect(match, `${statement.where}: ${resource}`).not.toBeNull();
        const [, type, name] = match ?? [];
        if (type === "policy")
          expect([`${environmentOf("Provision").JITR_POLICY_PREFIX}*`, EXISTING_POLICY]).toContain(name);
        else expect(name).toBe("*");
        for (const action of statement.Action) {
          expect(AUTHORIZES_ON[action], `${statement.where}: ${action}`).toContain(type);
        }
      }
    }
    for (const statement of iamStatements(template)) {
      expect(statement.Resource, statement.where).not.toContain("*");
    }
  });

  /**
   * The role's IoT, DynamoDB, S3 and SQS-send grants as `action on resource` (`iot`, or a table's logical id
   * and index, the bucket's or the queue's); the prefixes within the bucket are checked on their own. The
   * event sources' receive and delete are the mappings', not the code's.
   */
  const granted = (roleId: string) =>
    [
      ...new Set(
        statementsOf(roleId).flatMap((s) =>
          s.Action.filter((a) => /^(iot|dynamodb|s3):/.test(a) || a === "sqs:SendMessage").flatMap(
            (action) =>
              action.startsWith("iot:")
                ? [`${action} on iot`]
                : s.Resource.map(
                    (r) =>
                      `${action} on ${r
                        .replace(/^GetAtt:(\w+)\.Arn$/, "$1")
                        .replace(/^\$\{(\w+)\.Arn\}/, "$1")
                        .replace(/^(JobsBucket)\/.*$/, "$1")}`,
                  ),
          ),
        ),
      ),
    ].sort();

  it("derives what each function calls from its code: the provisioning function's stores are read, bound, counted and appended to", () => {
    // Prepare / Act: beforeAll. Assess: the provisioning path never writes mappings, never puts or deletes records or lots, never touches the ledger but to append (and to ask whether a certificate's outcome is recorded)
    const provision = needed("ProvisionRole");
    const admin = needed("AdminRole");

    expect(provision.filter((g) => g.includes("dynamodb:") && !g.includes("IdempotencyTable"))).toEqual([
      "dynamodb:BatchGetItem on MappingsTable",
      "dynamodb:GetItem on AllowlistTable",
      "dynamodb:GetItem on LotsTable",
      "dynamodb:PutItem on LedgerTable",
      "dynamodb:Query on LedgerTable/index/byCertificate",
      "dynamodb:UpdateItem on AllowlistTable",
      "dynamodb:UpdateItem on LotsTable",
    ]);
    expect(admin).toContain("iot:ListThingPrincipals on iot");
    expect(provision).not.toContain("iot:ListThingPrincipals on iot");
    expect(admin.filter((g) => g.includes("IdempotencyTable"))).toEqual([]);
    for (const calls of [provision, admin]) {
      const ledger = calls.filter((g) => g.includes("LedgerTable"));
      expect(
        ledger.filter(
          (g) => !/dynamodb:(PutItem|Query) on LedgerTable(\/index\/(byTime|byCertificate))?$/.test(g),
        ),
      ).toEqual([]);
    }
  });

  it("grants each role exactly the IoT and DynamoDB actions its function's code can call, on exactly the tables and indexes it uses", () => {
    for (const roleId of ["ProvisionRole", "AdminRole", "JobWorkerRole"] as const) {
      // Act
      const grants = granted(roleId);
      const calls = needed(roleId);

      // Assess: a call without a grant, and a grant no call uses, both fail
      expect(calls.length, roleId).toBeGreaterThan(10);
      expect({ roleId, missing: calls.filter((c) => !grants.includes(c)) }).toEqual({ roleId, missing: [] });
      expect({ roleId, unused: grants.filter((g) => !calls.includes(g)) }).toEqual({ roleId, unused: [] });
    }
  });

  it("gives each function its own role", () => {
    expect(evaluate(functionProps("Provision").Role)).toBe("GetAtt:ProvisionRole.Arn");
    expect(evaluate(functionProps("Admin").Role)).toBe("GetAtt:AdminRole.Arn");
    expect(evaluate(functionProps("JobWorker").Role)).toBe("GetAtt:JobWorkerRole.Arn");
    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();

    // Policies the service may change are only those with its prefix; existing ones may only be read.
    for (const roleId of ["ProvisionRole", "AdminRole", "JobWorkerRole"]) {
      const existing = statementsOf(roleId).filter((s) =>
        s.Resource.some((r) => r.endsWith(`:policy/${EXISTING_POLICY}`)),
      );
      expect(existing.map((s) => s.Action)).toEqual([["iot:GetPolicy"]]);
    }
  });

  it("lets each function reach only its own queue and tables", () => {
    const resourcesFor = (roleId: string, prefix: string) =>
      statementsOf(roleId)
        .filter((s) => s.Action.some((a) => a.startsWith(prefix)))
        .flatMap((s) => s.Resource);

    expect(resourcesFor("ProvisionRole", "sqs:")).toEqual(["GetAtt:ProvisionQueue.Arn"]);
    expect(resourcesFor("AdminRole", "sqs:")).toEqual(["GetAtt:JobsQueue.Arn"]);
    expect(resourcesFor("JobWorkerRole", "sqs:")).toEqual(["GetAtt:JobsQueue.Arn"]);
    expect(resourcesFor("JobWorkerRole", "dynamodb:").some((r) => r.includes("IdempotencyTable"))).toBe(
      false,
    );
    expect(resourcesFor("ProvisionRole", "dynamodb:").some((r) => r.includes("IdempotencyTable"))).toBe(true);
    expect(resourcesFor("AdminRole", "dynamodb:").some((r) => r.includes("IdempotencyTable"))).toBe(false);
    for (const roleId of ["ProvisionRole", "AdminRole", "JobWorkerRole"]) {
      for (const resource of resourcesFor(roleId, "dynamodb:")) {
        expect(resource).toMatch(
          /^(GetAtt:|\$\{)(Allowlist|Mappings|Lots|Ledger|Idempotency|Jobs)Table(\.Arn|\.Arn\}\/index\/\w+)$/,
        );
      }
    }
    expect(resourcesFor("ProvisionRole", "s3:")).toEqual([]);
  });
});

describe("functions", () => {
  it("run nodejs22.x on arm64 with the configuration handlers/config.ts reads", () => {
    for (const name of ["Provision", "Admin", "JobWorker"] as const) {
      expect(functionProps(name).Runtime).toBe("nodejs22.x");
      expect(functionProps(name).Architectures).toEqual(["arm64"]);
      expect(evaluate(environmentOf(name).JITR_ACCOUNT_ID)).toBe("Ref:AWS::AccountId");
    }
    // What CloudFormation and the Lambda runtime fill in: the account id and the region.
    const QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/jitr-dev-jobs";
    const asDeployed = (name: FunctionName) => {
      const env = Object.fromEntries(
        Object.entries(environmentOf(name)).map(([key, value]) => [key, String(evaluate(value))]),
      );
      expect(env.JITR_JOBS_QUEUE_URL ?? "Ref:JobsQueue").toBe("Ref:JobsQueue");
      return {
        ...env,
        ...(env.JITR_JOBS_QUEUE_URL !== undefined ? { JITR_JOBS_QUEUE_URL: QUEUE_URL } : {}),
        JITR_ACCOUNT_ID: "123456789012",
        AWS_REGION: "eu-west-1",
      };
    };

    const provisioning = readProvisioningConfig(asDeployed("Provision"));
    const admin = readAdminConfig(asDeployed("Admin"));

    expect(provisioning.tables.idempotency).toBe(evaluate(props(template, "IdempotencyTable").TableName));
    expect(provisioning.settings.policyPrefix).toBe("jitr-");
    expect(provisioning.settings.quarantine).toBe("inactive");
    expect(admin.settings.quarantine).toBe("inactive");
    expect(provisioning.metricsNamespace).toBe(environmentOf("Provision").POWERTOOLS_METRICS_NAMESPACE);
    expect(admin.tables.allowlist).toBe(evaluate(props(template, "AllowlistTable").TableName));
    // The admin function and the worker run jobs on the same table, queue and bucket; provisioning none.
    const worker = readAdminConfig(asDeployed("JobWorker"));
    expect(admin.jobs).toEqual({
      table: evaluate(props(template, "JobsTable").TableName),
      queueUrl: QUEUE_URL,
      bucket: "Ref:JobsBucket",
    });
    expect(worker.jobs).toEqual(admin.jobs);
    expect(environmentOf("Provision").JITR_JOBS_TABLE).toBeUndefined();
  });

  it("are bundled as one ESM file each, with the AWS SDK left to the runtime and nothing from local/", () => {
    // Zips are named after the function's key in serverless.yml, bundles after the entry file.
    const zips = { provision: "provision", admin: "admin", "job-worker": "jobWorker" };
    for (const [name, zip] of Object.entries(zips)) {
      const entries = readZip(join(outDir, `${zip}.zip`));
      const bundle = entries.find((entry) => entry.name === `handlers/${name}-entry.mjs`);

      expect(entries.map((entry) => entry.name).sort()).toEqual([
        `handlers/${name}-entry.mjs`,
        `handlers/${name}-entry.mjs.map`,
      ]);
      const code = bundle?.content.toString("utf8") ?? "";
      for (const marker of LOCAL_ONLY_STRINGS) expect(code, `${name}: ${marker}`).not.toContain(marker);
      expect(code).not.toMatch(/\bdynalite\b|\baedes\b/);
      expect(code).toMatch(/from\s*["']@aws-sdk\/client-iot["']/);
    }
    // The policy templates (policies/*.json, imported with import attributes) are inside the bundle.
    const provision = readZip(join(outDir, "provision.zip")).find((entry) => entry.name.endsWith(".mjs"));
    expect(provision?.content.toString("utf8")).toContain(
      "topic/devices/${iot:Connection.Thing.ThingName}/telemetry",
    );
  });

  it("the job worker bundle runs: it loads with the stack's configuration and drops a message that names no job", () => {
    const bundle = readZip(join(outDir, "jobWorker.zip")).find((e: ZipEntry) => e.name.endsWith(".mjs"));
    const file = join(root, `${workFolder}-smoke`, "handlers", "job-worker-entry.mjs");
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bundle?.content ?? "");
    const script = `
      const { handler } = await import(${JSON.stringify(pathToFileURL(file).href)});
      const context = { logStreamName: "smoke", getRemainingTimeInMillis: () => 300000 };
      const result = await handler({ Records: [{ messageId: "m-1", body: "{}" }] }, context);
      process.stdout.write("RESULT " + JSON.stringify(result) + "\\n");`;
    const env = Object.fromEntries(
      Object.entries(environmentOf("JobWorker")).map(([key, value]) => [key, String(value)]),
    );

    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        ...env,
        JITR_ACCOUNT_ID: "123456789012",
        AWS_REGION: "eu-west-1",
        JITR_JOBS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/jitr-dev-jobs",
        JITR_JOBS_BUCKET: "jitr-dev-jobsbucket-smoke",
      },
      encoding: "utf8",
      timeout: 30_000,
    });

    expect(run.status, run.stderr).toBe(0);
    const result = run.stdout.split("\n").find((line) => line.startsWith("RESULT "));
    expect(JSON.parse(result?.slice(7) ?? "{}")).toEqual({ batchItemFailures: [] });
    expect(run.stdout + run.stderr).toContain("job message names no job; dropped");
  });

  it("the provisioning bundle runs: it loads (JSON policies, reflect-metadata, CommonJS deps) and drops a malformed event", () => {
    const bundle = readZip(join(outDir, "provision.zip")).find((e: ZipEntry) => e.name.endsWith(".mjs"));
    // Placed inside the project so the runtime-provided @aws-sdk packages resolve from node_modules.
    const file = join(root, `${workFolder}-smoke`, "handlers", "provision-entry.mjs");
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bundle?.content ?? "");
    const script = `
      const { handler } = await import(${JSON.stringify(pathToFileURL(file).href)});
      const context = { functionName: "jitr-dev-provision", functionVersion: "$LATEST", awsRequestId: "smoke",
        invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:jitr-dev-provision",
        memoryLimitInMB: "512", getRemainingTimeInMillis: () => 30000 };
      const result = await handler({ hello: "world" }, context);
      process.stdout.write("RESULT " + JSON.stringify(result) + "\\n");`;
    const env = Object.fromEntries(
      Object.entries(environmentOf("Provision")).map(([key, value]) => [key, String(value)]),
    );

    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      env: { PATH: process.env.PATH, ...env, JITR_ACCOUNT_ID: "123456789012", AWS_REGION: "eu-west-1" },
      encoding: "utf8",
      timeout: 30_000,
    });

    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(
      run.stdout
        .split("\n")
        .find((line) => line.startsWith("RESULT "))
        ?.slice(7) ?? "{}",
    );
    expect(result).toMatchObject({ outcome: "malformed" });
  });
});
