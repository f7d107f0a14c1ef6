import { describe, expect, it } from "vitest";
import { type TemplateProblem, validateProvisioningTemplate } from "../../../domain/jitp/index.ts";
import { awsJitpTemplateBody, fixture } from "./fixtures.ts";

/** The problems a template is refused for ([] when it is accepted). */
const problems = (template: unknown): TemplateProblem[] => {
  const result = validateProvisioningTemplate(template);
  return result.ok ? [] : result.errors;
};
const problem = (path: string, message: RegExp) => ({ path, message: expect.stringMatching(message) });

const thing = { Type: "AWS::IoT::Thing", Properties: { ThingName: "t1" } };
/** A valid template with the given sections merged in; each test breaks one thing. */
const template = (over: Record<string, unknown> = {}, resources: Record<string, unknown> = {}) => ({
  Parameters: { Site: { Type: "String", Default: "s1" } },
  Resources: { thing, ...resources },
  ...over,
});

describe("validateProvisioningTemplate: templates that are accepted", () => {
  it("accepts the lightbulb template, AWS's documented JITP and bulk templates, and the factory template", () => {
    expect(problems(fixture("lightbulb-template.json"))).toEqual([]);
    expect(problems(awsJitpTemplateBody())).toEqual([]);
    expect(problems({ templateBody: awsJitpTemplateBody() })).toEqual([]);
    expect(problems(fixture("aws-bulk-csr-template.json"))).toEqual([]);
    expect(problems(fixture("aws-bulk-certificate-id-template.json"))).toEqual([]);
    expect(problems(fixture("factory-template.json"))).toEqual([]);
  });

  it("accepts the mapping field with parameters its template declares and allows", () => {
    const field = { templateBody: fixture("lightbulb-template.json"), parameters: { Location: "Seattle" } };
    expect(problems(field)).toEqual([]);
  });
});

describe("validateProvisioningTemplate: refusals, each with a path and a reason", () => {
  it("refuses a body that is not JSON, not an object, or has no Resources", () => {
    expect(problems({ templateBody: "{not json" })).toEqual([problem("templateBody", /not valid JSON/)]);
    expect(problems(["a list"])).toEqual([problem("", /must be a JSON object/)]);
    expect(problems({ Parameters: {} })).toEqual([problem("Resources", /is required/)]);
    expect(problems({ Resources: {} })).toEqual([problem("Resources", /is required/)]);
  });

  it("refuses unknown sections, and DeviceConfiguration (fleet provisioning only)", () => {
    expect(problems(template({ Outputs: {} }))).toEqual([problem("Outputs", /not a template section/)]);
    expect(problems(template({ DeviceConfiguration: { Foo: "Bar" } }))).toEqual([
      problem("DeviceConfiguration", /fleet provisioning/),
    ]);
  });

  it("refuses an unsupported intrinsic function, and condition functions outside Conditions", () => {
    const getAtt = { ...thing, Properties: { ThingName: { "Fn::GetAtt": ["thing", "Arn"] } } };
    expect(problems(template({}, { thing: getAtt }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::GetAtt", /unsupported intrinsic function Fn::GetAtt/),
    ]);
    const equals = { ...thing, Properties: { ThingName: { "Fn::Equals": ["a", "b"] } } };
    expect(problems(template({}, { thing: equals }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::Equals", /condition function.*Conditions/),
    ]);
    const mixed = { ...thing, Properties: { ThingName: { Ref: "Site", extra: 1 } } };
    expect(problems(template({}, { thing: mixed }))).toEqual([
      problem("Resources.thing.Properties.ThingName", /only key of its object/),
    ]);
  });

  it("refuses an unsupported resource type, property or resource key", () => {
    expect(problems(template({}, { job: { Type: "AWS::IoT::JobTemplate", Properties: {} } }))).toEqual([
      problem("Resources.job.Type", /unsupported resource type "AWS::IoT::JobTemplate"/),
    ]);
    const colour = { ...thing, Properties: { ThingName: "t1", Colour: "red" } };
    expect(problems(template({}, { thing: colour }))).toEqual([
      problem("Resources.thing.Properties.Colour", /not a property of AWS::IoT::Thing/),
    ]);
    expect(problems(template({}, { thing: { ...thing, DependsOn: "x" } }))).toEqual([
      problem("Resources.thing.DependsOn", /not supported/),
    ]);
  });

  it("refuses BillingGroup and PackageVersions: the service does not manage them", () => {
    const billed = { ...thing, Properties: { ThingName: "t1", BillingGroup: "b1" } };
    expect(problems(template({}, { thing: billed }))).toEqual([
      problem("Resources.thing.Properties.BillingGroup", /BillingGroup is not supported/),
    ]);
    const packaged = { ...thing, Properties: { ThingName: "t1", PackageVersions: ["p"] } };
    expect(problems(template({}, { thing: packaged }))).toEqual([
      problem("Resources.thing.Properties.PackageVersions", /PackageVersions is not supported/),
    ]);
  });

  it("refuses a Ref to an unknown parameter or resource, in Ref and in Fn::Sub", () => {
    const ref = { ...thing, Properties: { ThingName: { Ref: "Nope" } } };
    expect(problems(template({}, { thing: ref }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Ref", /unknown parameter or resource "Nope"/),
    ]);
    const sub = { ...thing, Properties: { ThingName: { "Fn::Sub": "x-${Nope}" } } };
    expect(problems(template({}, { thing: sub }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::Sub", /\$\{Nope\} names no parameter or resource/),
    ]);
  });

  it("refuses an IoT policy variable Fn::Sub would substitute, with the escape that keeps it", () => {
    const policy = {
      Type: "AWS::IoT::Policy",
      Properties: {
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Action: "iot:Connect", Resource: { "Fn::Sub": "client/${iot:ClientId}" } },
          ],
        },
      },
    };
    expect(problems(template({}, { policy }))).toEqual([
      problem(
        "Resources.policy.Properties.PolicyDocument.Statement[0].Resource.Fn::Sub",
        /\$\{iot:ClientId\} names no parameter.*\$\{!iot:ClientId\}/,
      ),
    ]);
  });

  it("refuses a resource attribute in Fn::Sub (Fn::GetAtt is not supported)", () => {
    const sub = { ...thing, Properties: { ThingName: { "Fn::Sub": "${thing.Arn}" } } };
    expect(problems(template({}, { thing: sub }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::Sub", /resource attribute/),
    ]);
  });

  it("refuses an unknown condition, in Fn::If, on a resource and in a condition", () => {
    const ifUnknown = { ...thing, Properties: { ThingName: { "Fn::If": ["Nope", "a", "b"] } } };
    expect(problems(template({}, { thing: ifUnknown }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::If[0]", /names no condition/),
    ]);
    expect(problems(template({}, { thing: { ...thing, Condition: "Nope" } }))).toEqual([
      problem("Resources.thing.Condition", /names no condition/),
    ]);
    expect(problems(template({ Conditions: { A: { Condition: "Nope" } } }))).toEqual([
      problem("Conditions.A.Condition", /names no condition/),
    ]);
  });

  it("refuses malformed conditions: not a condition function, a resource Ref, a cycle", () => {
    expect(problems(template({ Conditions: { A: { "Fn::Join": ["", ["a"]] } } }))).toEqual([
      problem("Conditions.A.Fn::Join", /not a condition function/),
    ]);
    expect(problems(template({ Conditions: { A: { "Fn::Equals": [{ Ref: "thing" }, "t1"] } } }))).toEqual([
      problem("Conditions.A.Fn::Equals[0].Ref", /parameters only/),
    ]);
    expect(
      problems(template({ Conditions: { A: { "Fn::Not": [{ Condition: "B" }] }, B: { Condition: "A" } } })),
    ).toEqual([problem("Conditions.A", /depends on itself: A -> B -> A/)]);
    expect(problems(template({ Conditions: { A: { "Fn::And": [{ Condition: "A" }] } } }))).toEqual([
      problem("Conditions.A.Fn::And", /2 to 10 conditions/),
    ]);
  });

  it("refuses a malformed Parameters section, naming the parameter and the property at fault", () => {
    expect(problems(template({ Parameters: ["Site"] }))).toEqual([
      problem("Parameters", /must be an object/),
    ]);
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ Default: "x" }, "Parameters.P.Type", /is required/],
      [
        { Type: "AWS::EC2::VPC::Id" },
        "Parameters.P.Type",
        /must be one of String, Number, CommaDelimitedList/,
      ],
      [
        { Type: "String", AllowedPattern: "[a-z" },
        "Parameters.P.AllowedPattern",
        /not a valid regular expression/,
      ],
      [{ Type: "String", MaxLength: -1 }, "Parameters.P.MaxLength", /non-negative integer/],
      [{ Type: "String", AllowedValues: [] }, "Parameters.P.AllowedValues", /non-empty list/],
      [
        { Type: "String", Default: "UPPER", AllowedPattern: "[a-z]+" },
        "Parameters.P.Default",
        /does not match AllowedPattern/,
      ],
      [
        { Type: "String", Default: "toolong", MaxLength: 3 },
        "Parameters.P.Default",
        /longer than MaxLength 3/,
      ],
      [{ Type: "Number", Default: "ten" }, "Parameters.P.Default", /not a number/],
      [{ Type: "String", Colour: "red" }, "Parameters.P.Colour", /not a parameter property/],
    ];
    for (const [declaration, path, message] of cases) {
      expect(problems(template({ Parameters: { P: declaration } })), path).toEqual([problem(path, message)]);
    }
    expect(problems(template({ Parameters: { P: "String" } }))).toEqual([
      problem("Parameters.P", /must be a parameter declaration/),
    ]);
    expect(
      problems(template({ Parameters: { "AWS::IoT::Certificate::Email": { Type: "String" } } })),
    ).toEqual([
      problem(
        "Parameters.AWS::IoT::Certificate::Email",
        /not a parameter AWS IoT fills from the certificate/,
      ),
    ]);
    expect(problems(template({ Parameters: { "AWS::Region": { Type: "String" } } }))).toEqual([
      problem("Parameters.AWS::Region", /pseudo parameter/),
    ]);
  });

  it("refuses Mappings that use functions, and Fn::FindInMap into an unknown map or key", () => {
    expect(problems(template({ Mappings: { M: { k: { v: { Ref: "Site" } } } } }))).toEqual([
      problem("Mappings.M.k.v", /cannot use parameters or intrinsic functions/),
    ]);
    const find = (args: unknown[]) => ({ ...thing, Properties: { ThingName: { "Fn::FindInMap": args } } });
    const mappings = { Mappings: { M: { k: { v: "t1" } } } };
    expect(problems(template(mappings, { thing: find(["N", "k", "v"]) }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::FindInMap[0]", /names no mapping/),
    ]);
    expect(problems(template(mappings, { thing: find(["M", "j", "v"]) }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::FindInMap[1]", /mapping M has no key j/),
    ]);
    expect(problems(template(mappings, { thing: find(["M", "k"]) }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::FindInMap", /list of 3 arguments/),
    ]);
  });

  it("refuses malformed function arguments", () => {
    const at = (fn: string, args: unknown) => ({ ...thing, Properties: { ThingName: { [fn]: args } } });
    expect(problems(template({}, { thing: at("Fn::Join", ["-"]) }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::Join", /list of 2 arguments/),
    ]);
    expect(problems(template({}, { thing: at("Fn::Join", ["-", "ab"]) }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::Join[1]", /must be a list/),
    ]);
    expect(problems(template({}, { thing: at("Fn::Select", [2, ["a", "b"]]) }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::Select[0]", /index 2 is outside the list of 2/),
    ]);
    expect(problems(template({}, { thing: at("Fn::Split", ["", "ab"]) }))).toEqual([
      problem("Resources.thing.Properties.ThingName.Fn::Split[0]", /non-empty string/),
    ]);
    expect(problems(template({}, { thing: at("Fn::Sub", ["a", "b", "c"]) }))).toEqual([
      problem(
        "Resources.thing.Properties.ThingName.Fn::Sub",
        /a string, or a list of a string and an object/,
      ),
    ]);
  });

  it("refuses literal values AWS would refuse: thing name, group, attribute, Status, policy name", () => {
    const props = (properties: Record<string, unknown>) => ({ ...thing, Properties: properties });
    expect(problems(template({}, { thing: props({ ThingName: "has space" }) }))).toEqual([
      problem("Resources.thing.Properties.ThingName", /must be a thing name/),
    ]);
    expect(problems(template({}, { thing: props({ ThingGroups: ["ok", "not ok"] }) }))).toEqual([
      problem("Resources.thing.Properties.ThingGroups[1]", /thing group name/),
    ]);
    expect(problems(template({}, { thing: props({ AttributePayload: { a: 1 } }) }))).toEqual([
      problem("Resources.thing.Properties.AttributePayload.a", /must be a string/),
    ]);
    const certificate = { Type: "AWS::IoT::Certificate", Properties: { Status: "REVOKED" } };
    expect(problems(template({}, { certificate }))).toEqual([
      problem("Resources.certificate.Properties.Status", /ACTIVE or INACTIVE/),
    ]);
    const policy = { Type: "AWS::IoT::Policy", Properties: { PolicyName: "no spaces please" } };
    expect(problems(template({}, { policy }))).toEqual([
      problem("Resources.policy.Properties.PolicyName", /policy name/),
    ]);
  });

  it("refuses a policy with both or neither of PolicyName and PolicyDocument, or a broken document", () => {
    const policy = (properties: Record<string, unknown>) => ({
      policy: { Type: "AWS::IoT::Policy", Properties: properties },
    });
    expect(problems(template({}, policy({})))).toEqual([
      problem("Resources.policy.Properties", /needs PolicyName/),
    ]);
    const document = '{"Version": "2012-10-17", "Statement": []}';
    expect(problems(template({}, policy({ PolicyName: "p", PolicyDocument: document })))).toEqual([
      problem("Resources.policy.Properties", /not both/),
    ]);
    expect(problems(template({}, policy({ PolicyDocument: "{ not json" })))).toEqual([
      problem("Resources.policy.Properties.PolicyDocument", /not valid JSON/),
    ]);
    const huge = {
      Version: "2012-10-17",
      Statement: Array.from({ length: 30 }, () => ({
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: "x".repeat(80),
      })),
    };
    expect(problems(template({}, policy({ PolicyDocument: huge })))).toEqual([
      problem("Resources.policy.Properties.PolicyDocument", /AWS IoT allows 2048/),
    ]);
  });

  it("refuses a Ref to a policy the service names (PolicyDocument)", () => {
    const policy = {
      Type: "AWS::IoT::Policy",
      Properties: { PolicyDocument: { Version: "2012-10-17", Statement: [] } },
    };
    const named = { ...thing, Properties: { ThingName: "t1", AttributePayload: { p: { Ref: "policy" } } } };
    expect(problems(template({}, { thing: named, policy }))).toEqual([
      problem("Resources.thing.Properties.AttributePayload.p.Ref", /needs its PolicyName/),
    ]);
  });

  it("refuses two things, two certificates, or two policies that can apply together", () => {
    const second = { Type: "AWS::IoT::Thing", Properties: {} };
    expect(problems(template({}, { other: second }))).toEqual([
      problem("Resources", /at most one AWS::IoT::Thing/),
    ]);
    const certificate = { Type: "AWS::IoT::Certificate", Properties: {} };
    expect(problems(template({}, { c1: certificate, c2: certificate }))).toEqual([
      problem("Resources", /at most one AWS::IoT::Certificate/),
    ]);
    const policy = { Type: "AWS::IoT::Policy", Properties: { PolicyName: "p" } };
    expect(problems(template({}, { p1: policy, p2: policy }))).toEqual([
      problem("Resources", /at most one AWS::IoT::Policy may apply/),
    ]);
    const conditions = { Conditions: { A: { "Fn::Equals": [{ Ref: "Site" }, "s1"] } } };
    expect(problems(template(conditions, { p1: policy, p2: { ...policy, Condition: "A" } }))).toEqual([]);
  });

  it("refuses resources that refer to each other in a cycle", () => {
    const self = { ...thing, Properties: { ThingName: { "Fn::Join": ["-", [{ Ref: "thing" }, "x"]] } } };
    expect(problems(template({}, { thing: self }))).toEqual([
      problem("Resources.thing", /depends on itself/),
    ]);
  });

  it("refuses OverrideSettings that AWS does not define", () => {
    expect(problems(template({}, { thing: { ...thing, OverrideSettings: { ThingName: "MERGE" } } }))).toEqual(
      [problem("Resources.thing.OverrideSettings.ThingName", /not an override/)],
    );
    expect(
      problems(template({}, { thing: { ...thing, OverrideSettings: { ThingGroups: "SOMETIMES" } } })),
    ).toEqual([problem("Resources.thing.OverrideSettings.ThingGroups", /DO_NOTHING, REPLACE, FAIL, MERGE/)]);
  });

  it("refuses mapping parameters the template does not declare or allow", () => {
    const templateBody = fixture("lightbulb-template.json");
    expect(problems({ templateBody, parameters: { Colour: "red" } })).toEqual([
      problem("parameters.Colour", /declares no parameter Colour/),
    ]);
    expect(problems({ templateBody, parameters: { Location: "Not Allowed" } })).toEqual([
      problem("parameters.Location", /does not match AllowedPattern/),
    ]);
    expect(problems({ templateBody, parameters: { Location: 7 } })).toEqual([
      problem("parameters.Location", /must be a string/),
    ]);
    expect(problems({ templateBody, parameters: { "AWS::IoT::Certificate::Id": "x" } })).toEqual([
      problem("parameters.AWS::IoT::Certificate::Id", /always the id of the certificate/),
    ]);
    expect(problems({ templateBody, parameters: "Location=WA" })).toEqual([
      problem("parameters", /must be an object/),
    ]);
    expect(problems({ templateBody, roleArn: "arn:aws:iam::123456789012:role/JITPRole" })).toEqual([
      problem("roleArn", /not needed/),
    ]);
  });

  it("refuses AWS's fleet-provisioning example: fleet-only sections and a Ref to an undeclared parameter", () => {
    expect(problems(fixture("aws-fleet-provisioning-template.json"))).toEqual([
      problem("DeviceConfiguration", /fleet provisioning/),
      problem(
        "Resources.thing.Properties.ThingTypeName.Fn::Join[1][1].Ref",
        /unknown parameter or resource "SerialNumber"/,
      ),
      problem("Resources.thing.Properties.BillingGroup", /BillingGroup is not supported/),
    ]);
  });
});
