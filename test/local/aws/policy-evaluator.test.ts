import { describe, expect, it } from "vitest";
import {
  type EvaluationContext,
  evaluate,
  evaluateDetailed,
  policyDocumentProblem,
} from "../../../local/aws/policy-evaluator.ts";

const ARN = "arn:aws:iot:us-east-1:123456789012";
const doc = (...Statement: object[]): string => JSON.stringify({ Version: "2012-10-17", Statement });
const topic = (name: string): string => `${ARN}:topic/${name}`;
const client = (name: string): string => `${ARN}:client/${name}`;

function check(documents: string[], action: string, resource: string, context: EvaluationContext = {}) {
  return evaluate(documents, { action, resource, context });
}

describe("policy evaluator", () => {
  it("denies implicitly when nothing matches, and with no documents", () => {
    expect(check([], "iot:Connect", client("a"))).toEqual({ allowed: false, reason: "implicit-deny" });
    const d = doc({ Effect: "Allow", Action: "iot:Publish", Resource: topic("a") });
    expect(check([d], "iot:Publish", topic("b"))).toEqual({ allowed: false, reason: "implicit-deny" });
    expect(check([d], "iot:Subscribe", topic("a"))).toEqual({ allowed: false, reason: "implicit-deny" });
    expect(check([d], "iot:Publish", topic("a"))).toEqual({ allowed: true, reason: "allowed" });
  });

  it("lets an explicit Deny win over any Allow, across documents", () => {
    const allow = doc({ Effect: "Allow", Action: "iot:*", Resource: "*" });
    const deny = doc({ Effect: "Deny", Action: "iot:Publish", Resource: topic("secret/*") });
    expect(check([allow, deny], "iot:Publish", topic("secret/x"))).toEqual({
      allowed: false,
      reason: "explicit-deny",
    });
    expect(check([deny, allow], "iot:Publish", topic("public/x"))).toEqual({
      allowed: true,
      reason: "allowed",
    });
    const both = doc(
      { Effect: "Allow", Action: "iot:Publish", Resource: topic("a") },
      { Effect: "Deny", Action: "iot:Publish", Resource: topic("a") },
    );
    expect(check([both], "iot:Publish", topic("a")).reason).toBe("explicit-deny");
  });

  it("matches actions case-insensitively with * and ? wildcards, as string or array", () => {
    const d = doc({ Effect: "Allow", Action: ["iot:Pub*", "iot:Connec?"], Resource: "*" });
    expect(check([d], "iot:Publish", topic("x")).allowed).toBe(true);
    expect(check([d], "IOT:PUBLISH", topic("x")).allowed).toBe(true);
    expect(check([d], "iot:Connect", client("x")).allowed).toBe(true);
    expect(check([d], "iot:Connects", client("x")).allowed).toBe(false);
    expect(check([d], "iot:Subscribe", topic("x")).allowed).toBe(false);
    expect(
      check([doc({ Effect: "Allow", Action: "*", Resource: "*" })], "iot:Receive", topic("x")).allowed,
    ).toBe(true);
  });

  it("matches resources case-sensitively with * spanning slashes and ? one character", () => {
    const d = doc({ Effect: "Allow", Action: "iot:Publish", Resource: [topic("dev/*/up"), topic("id/?")] });
    expect(check([d], "iot:Publish", topic("dev/a/b/up")).allowed).toBe(true);
    expect(check([d], "iot:Publish", topic("dev//up")).allowed).toBe(true);
    expect(check([d], "iot:Publish", topic("DEV/a/up")).allowed).toBe(false);
    expect(check([d], "iot:Publish", topic("id/7")).allowed).toBe(true);
    expect(check([d], "iot:Publish", topic("id/77")).allowed).toBe(false);
    expect(check([d], "iot:Publish", topic("id/")).allowed).toBe(false);
  });

  it("treats MQTT wildcards and regex characters in resources literally", () => {
    const d = doc({ Effect: "Allow", Action: "iot:Subscribe", Resource: `${ARN}:topicfilter/a/+/b.c` });
    expect(check([d], "iot:Subscribe", `${ARN}:topicfilter/a/+/b.c`).allowed).toBe(true);
    expect(check([d], "iot:Subscribe", `${ARN}:topicfilter/a/x/b.c`).allowed).toBe(false);
    expect(check([d], "iot:Subscribe", `${ARN}:topicfilter/a/+/bxc`).allowed).toBe(false);
  });

  it("substitutes thing name, client id, subject common name and serial number", () => {
    const d = doc(
      {
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}`,
      },
      { Effect: "Allow", Action: "iot:Publish", Resource: `${ARN}:topic/c/\${iot:ClientId}/*` },
      {
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: `${ARN}:topic/cn/\${iot:Certificate.Subject.CommonName}`,
      },
      {
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: `${ARN}:topic/sn/\${iot:Certificate.Subject.SerialNumber}`,
      },
    );
    const context = {
      clientId: "dev-1",
      thingName: "dev-1",
      subjectCommonName: "cn-1",
      subjectSerialNumber: "SN9",
    };
    expect(check([d], "iot:Connect", client("dev-1"), context).allowed).toBe(true);
    expect(check([d], "iot:Connect", client("dev-2"), context).allowed).toBe(false);
    expect(check([d], "iot:Publish", topic("c/dev-1/x"), context).allowed).toBe(true);
    expect(check([d], "iot:Publish", topic("c/dev-2/x"), context).allowed).toBe(false);
    expect(check([d], "iot:Publish", topic("cn/cn-1"), context).allowed).toBe(true);
    expect(check([d], "iot:Publish", topic("cn/cn-2"), context).allowed).toBe(false);
    expect(check([d], "iot:Publish", topic("sn/SN9"), context).allowed).toBe(true);
  });

  it("does not let a substituted value act as a wildcard", () => {
    const d = doc({ Effect: "Allow", Action: "iot:Publish", Resource: `${ARN}:topic/c/\${iot:ClientId}` });
    expect(check([d], "iot:Publish", topic("c/other"), { clientId: "*" }).allowed).toBe(false);
    expect(check([d], "iot:Publish", topic("c/*"), { clientId: "*" }).allowed).toBe(true);
  });

  it("makes a statement with an unresolvable variable not match (Allow and Deny)", () => {
    const allow = doc({
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}`,
    });
    expect(check([allow], "iot:Connect", client("dev-1"), { clientId: "dev-1" })).toEqual({
      allowed: false,
      reason: "implicit-deny",
    });
    const deny = doc(
      { Effect: "Allow", Action: "iot:*", Resource: "*" },
      { Effect: "Deny", Action: "iot:Publish", Resource: `${ARN}:topic/\${iot:Connection.Thing.ThingName}` },
    );
    expect(check([deny], "iot:Publish", topic("x"), {}).allowed).toBe(true);
    expect(check([deny], "iot:Publish", topic("x"), { thingName: "x" }).reason).toBe("explicit-deny");
  });

  it("resolves IsAttached and supports it in a Bool condition", () => {
    const d = doc({
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: "*",
      Condition: { Bool: { "iot:Connection.Thing.IsAttached": "true" } },
    });
    expect(check([d], "iot:Connect", client("a"), { thingName: "a" }).allowed).toBe(true);
    expect(check([d], "iot:Connect", client("a"), { clientId: "a" }).allowed).toBe(false);
    expect(check([d], "iot:Connect", client("a"), { thingName: "a", isAttached: false }).allowed).toBe(false);
    const inResource = doc({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: `${ARN}:topic/attached/\${iot:Connection.Thing.IsAttached}`,
    });
    expect(check([inResource], "iot:Publish", topic("attached/true"), { thingName: "a" }).allowed).toBe(true);
    expect(check([inResource], "iot:Publish", topic("attached/true"), {}).allowed).toBe(false);
  });

  it("supports String conditions, IfExists and Null", () => {
    const d = doc({
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: "*",
      Condition: {
        StringLike: { "iot:ClientId": "dev-*" },
        StringNotEquals: { "iot:ClientId": "dev-banned" },
      },
    });
    expect(check([d], "iot:Connect", client("x"), { clientId: "dev-1" }).allowed).toBe(true);
    expect(check([d], "iot:Connect", client("x"), { clientId: "dev-banned" }).allowed).toBe(false);
    expect(check([d], "iot:Connect", client("x"), { clientId: "other" }).allowed).toBe(false);
    expect(check([d], "iot:Connect", client("x"), {}).allowed).toBe(false);
    const ifExists = doc({
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: "*",
      Condition: { StringEqualsIfExists: { "iot:Connection.Thing.ThingName": "t" } },
    });
    expect(check([ifExists], "iot:Connect", client("x"), {}).allowed).toBe(true);
    expect(check([ifExists], "iot:Connect", client("x"), { thingName: "u" }).allowed).toBe(false);
    const isNull = doc({
      Effect: "Deny",
      Action: "iot:Connect",
      Resource: "*",
      Condition: { Null: { "iot:Connection.Thing.ThingName": "true" } },
    });
    expect(check([isNull], "iot:Connect", client("x"), {}).reason).toBe("explicit-deny");
    expect(check([isNull], "iot:Connect", client("x"), { thingName: "t" }).reason).toBe("implicit-deny");
    const unknown = doc({
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: "*",
      Condition: { NumericLessThan: { "iot:ClientId": "3" } },
    });
    expect(check([unknown], "iot:Connect", client("x"), { clientId: "1" }).allowed).toBe(false);
  });

  it("supports NotAction and NotResource", () => {
    const d = doc({ Effect: "Allow", NotAction: "iot:Publish", Resource: "*" });
    expect(check([d], "iot:Subscribe", topic("a")).allowed).toBe(true);
    expect(check([d], "iot:Publish", topic("a")).allowed).toBe(false);
    const nr = doc(
      { Effect: "Allow", Action: "iot:Publish", Resource: "*" },
      { Effect: "Deny", Action: "iot:Publish", NotResource: topic("public/*") },
    );
    expect(check([nr], "iot:Publish", topic("public/x")).allowed).toBe(true);
    expect(check([nr], "iot:Publish", topic("private/x")).reason).toBe("explicit-deny");
  });

  it("resolves thing attributes, type, and certificate subject/issuer fields", () => {
    const d = doc({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: `${ARN}:topic/\${iot:Connection.Thing.Attributes[site]}/\${iot:Connection.Thing.ThingTypeName}/\${iot:Certificate.Subject.Organization}/\${iot:Certificate.Issuer.CommonName}`,
    });
    const context: EvaluationContext = {
      thingName: "t",
      thingAttributes: { site: "paris" },
      thingTypeName: "sensor",
      certificateSubject: { Organization: "Acme" },
      certificateIssuer: { CommonName: "Root" },
    };
    expect(check([d], "iot:Publish", topic("paris/sensor/Acme/Root"), context).allowed).toBe(true);
    expect(
      check([d], "iot:Publish", topic("paris/sensor/Acme/Root"), { ...context, thingAttributes: {} }).allowed,
    ).toBe(false);
  });

  it("supports the ${*} ${?} ${$} escapes as literal characters", () => {
    const d = doc({ Effect: "Allow", Action: "iot:Publish", Resource: `${ARN}:topic/a\${*}b\${?}\${$}` });
    expect(check([d], "iot:Publish", topic("a*b?$")).allowed).toBe(true);
    expect(check([d], "iot:Publish", topic("axxbc$")).allowed).toBe(false);
  });

  it("ignores unparsable documents and reports which documents decided", () => {
    const allow = doc({ Effect: "Allow", Action: "iot:Publish", Resource: "*" });
    const deny = doc({ Effect: "Deny", Action: "iot:Publish", Resource: topic("x") });
    expect(check(["{not json", allow], "iot:Publish", topic("y")).allowed).toBe(true);
    const detailed = evaluateDetailed(["{", allow, deny], {
      action: "iot:Publish",
      resource: topic("x"),
      context: {},
    });
    expect(detailed).toEqual({ allowed: false, reason: "explicit-deny", allowedBy: [1], deniedBy: [2] });
  });

  it("accepts a single statement object", () => {
    const d = JSON.stringify({
      Version: "2012-10-17",
      Statement: { Effect: "Allow", Action: "iot:Connect", Resource: "*" },
    });
    expect(check([d], "iot:Connect", client("a")).allowed).toBe(true);
  });

  it("validates documents like CreatePolicy does", () => {
    expect(policyDocumentProblem(doc({ Effect: "Allow", Action: "iot:*", Resource: "*" }))).toBeUndefined();
    expect(policyDocumentProblem("{")).toMatch(/JSON/);
    expect(policyDocumentProblem(JSON.stringify({ Statement: [] }))).toMatch(/Version/);
    expect(policyDocumentProblem(JSON.stringify({ Version: "2012-10-17" }))).toMatch(/Statement/);
    expect(policyDocumentProblem(doc({ Effect: "Maybe", Action: "iot:*", Resource: "*" }))).toMatch(/Effect/);
    expect(policyDocumentProblem(doc({ Effect: "Allow", Resource: "*" }))).toMatch(/Action/);
    expect(policyDocumentProblem(doc({ Effect: "Allow", Action: "iot:*" }))).toMatch(/Resource/);
    const big = doc({ Effect: "Allow", Action: "iot:Publish", Resource: topic("x".repeat(2048)) });
    expect(policyDocumentProblem(big)).toMatch(/2048/);
    // Whitespace does not count towards the limit.
    const padded = doc({ Effect: "Allow", Action: "iot:Publish", Resource: topic("x") }).replace(
      /,/g,
      ",".padEnd(900),
    );
    expect(padded.length).toBeGreaterThan(2048);
    expect(policyDocumentProblem(padded)).toBeUndefined();
  });

  it("matches many wildcards against a long topic in linear time (a near miss does not backtrack)", () => {
    // Prepare: eight `*a` and a final `b`, which a backtracking engine needs about n^8 steps to refuse
    const d = doc({ Effect: "Allow", Action: "iot:Publish", Resource: topic(`${"*a".repeat(8)}b`) });
    const nearMiss = topic("a".repeat(200));

    // Act
    const started = performance.now();
    const refused = check([d], "iot:Publish", nearMiss);
    const matched = check([d], "iot:Publish", topic(`${"a".repeat(200)}b`));
    const elapsed = performance.now() - started;

    // Assess
    expect(refused).toEqual({ allowed: false, reason: "implicit-deny" });
    expect(matched).toEqual({ allowed: true, reason: "allowed" });
    expect(elapsed).toBeLessThan(2000);
  });
});
