import { describe, expect, it } from "vitest";
import {
  type EvaluatedTemplate,
  evaluateProvisioningTemplate,
  type ProvisioningTemplateField,
  type TemplateContext,
} from "../../../domain/jitp/index.ts";
import { awsJitpTemplateBody, deviceContext, fixture } from "./fixtures.ts";

const evaluate = (field: ProvisioningTemplateField, context: TemplateContext): EvaluatedTemplate => {
  const result = evaluateProvisioningTemplate(field, context);
  if (!result.ok) throw new Error(`expected the template to evaluate: ${result.error}`);
  return result.template;
};
const failure = (field: ProvisioningTemplateField, context: TemplateContext) => {
  const result = evaluateProvisioningTemplate(field, context);
  if (result.ok) throw new Error("expected the template not to evaluate");
  return { error: result.error, parameter: result.parameter };
};

const publishFooBar = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: ["iot:Publish"],
      Resource: ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"],
    },
  ],
};

describe("evaluateProvisioningTemplate: the lightbulb template", () => {
  it("takes the thing name from the device id, the rest from the allowlist record's attributes", async () => {
    // Prepare: a bulk-provisioning style record: SerialNumber and Location as attributes
    const context = await deviceContext(
      { CN: "bulb-0001" },
      { recordAttributes: { SerialNumber: "SN-123", Location: "Seattle" } },
    );

    // Act
    const template = evaluate({ templateBody: fixture("lightbulb-template.json") }, context);

    // Assess
    expect(template.thing).toEqual({
      thingName: "bulb-0001",
      thingTypeName: "lightBulb-versionA",
      attributes: { version: "v1", serialNumber: "SN-123" },
      thingGroups: ["v1-lightbulbs", "Seattle"],
    });
    expect(template.certificateStatus).toBe("ACTIVE");
    expect(template.policy).toBeUndefined();
    expect(template.parameterSources).toEqual({
      ThingName: "device",
      SerialNumber: "record",
      Location: "record",
      CSR: "certificate",
    });
    expect(template.resources.certificate).toEqual({
      type: "AWS::IoT::Certificate",
      properties: { CertificateSigningRequest: "", Status: "ACTIVE" },
    });
  });

  it("falls back to the mapping's parameters, then to the Defaults; the record wins over the mapping", async () => {
    const context = await deviceContext({ CN: "bulb-0002" }, { recordAttributes: { Location: "Oslo" } });
    const template = evaluate(
      {
        templateBody: fixture("lightbulb-template.json"),
        parameters: { Location: "Paris", SerialNumber: "v2" },
      },
      context,
    );
    expect(template.thing?.thingGroups).toEqual(["v1-lightbulbs", "Oslo"]);
    expect(template.thing?.attributes).toEqual({ version: "v1", serialNumber: "v2" });
    expect(template.parameterSources).toMatchObject({ Location: "record", SerialNumber: "mapping" });

    const defaults = evaluate(
      { templateBody: fixture("lightbulb-template.json") },
      await deviceContext({ CN: "bulb-0003" }),
    );
    expect(defaults.thing?.thingGroups).toEqual(["v1-lightbulbs", "WA"]);
    expect(defaults.parameters).toMatchObject({ SerialNumber: "v1", Location: "WA" });
  });

  it("a record attribute ThingName names the thing instead of the device id", async () => {
    const context = await deviceContext(
      { CN: "bulb-0004" },
      { recordAttributes: { ThingName: "kitchen-bulb" } },
    );
    const template = evaluate({ templateBody: fixture("lightbulb-template.json") }, context);
    expect(template.thing?.thingName).toBe("kitchen-bulb");
  });
});

describe("evaluateProvisioningTemplate: AWS's documented JITP and bulk-registration templates", () => {
  it("the JITP template (an escaped string, as in the registration config) reads the certificate", async () => {
    const context = await deviceContext({ CN: "lamp-7", serialNumber: "SN0007", C: "US" });
    const template = evaluate({ templateBody: awsJitpTemplateBody() }, context);
    expect(template.thing).toEqual({
      thingName: "lamp-7",
      thingTypeName: "lightBulb-versionA",
      attributes: { version: "v1", serialNumber: "SN0007" },
      thingGroups: ["v1-lightbulbs", "US"],
    });
    expect(template.parameters).toEqual({
      "AWS::IoT::Certificate::CommonName": "lamp-7",
      "AWS::IoT::Certificate::SerialNumber": "SN0007",
      "AWS::IoT::Certificate::Country": "US",
      "AWS::IoT::Certificate::Id": context.certificateId,
    });
    expect(Object.values(template.parameterSources)).toEqual(Array(4).fill("certificate"));
    expect(template.resources.certificate?.properties).toEqual({
      CertificateId: context.certificateId,
      Status: "ACTIVE",
    });
    expect(template.policy).toMatchObject({ logicalName: "policy", perDevice: false });
    const document = template.policy && "document" in template.policy ? template.policy.document : undefined;
    expect(JSON.parse(String(document))).toEqual(publishFooBar);
  });

  it("the JITP template refuses a device whose certificate lacks a field it declares (Country)", async () => {
    const context = await deviceContext({ CN: "lamp-8", serialNumber: "SN0008" });
    expect(failure({ templateBody: awsJitpTemplateBody() }, context)).toEqual({
      parameter: "AWS::IoT::Certificate::Country",
      error: expect.stringMatching(
        /parameter AWS::IoT::Certificate::Country has no value: the certificate has no such subject field/,
      ),
    });
    // ... unless the mapping supplies the value the certificate lacks
    const filled = evaluate(
      { templateBody: awsJitpTemplateBody(), parameters: { "AWS::IoT::Certificate::Country": "NO" } },
      context,
    );
    expect(filled.thing?.thingGroups).toEqual(["v1-lightbulbs", "NO"]);
    expect(filled.parameterSources["AWS::IoT::Certificate::Country"]).toBe("mapping");
  });

  it("the certificate's own fields win over record attributes of the same name", async () => {
    const context = await deviceContext(
      { CN: "lamp-9", serialNumber: "SN0009", C: "US" },
      { recordAttributes: { "AWS::IoT::Certificate::Country": "FR" } },
    );
    expect(evaluate({ templateBody: awsJitpTemplateBody() }, context).thing?.thingGroups).toEqual([
      "v1-lightbulbs",
      "US",
    ]);
  });

  it("the bulk templates: CSR and CertificateId name the registered certificate; the thing is named by the device id", async () => {
    const context = await deviceContext({ CN: "bulb-77" }, { recordAttributes: { SerialNumber: "77" } });
    for (const name of ["aws-bulk-csr-template.json", "aws-bulk-certificate-id-template.json"]) {
      const template = evaluate({ templateBody: fixture(name) }, context);
      expect(template.thing, name).toEqual({
        thingTypeName: "lightBulb-versionA",
        attributes: { version: "v1", serialNumber: "77" },
        thingGroups: ["v1-lightbulbs", "WA"],
      });
      expect(template.policy, name).toMatchObject({ logicalName: "policy", perDevice: false });
    }
    const byId = evaluate({ templateBody: fixture("aws-bulk-certificate-id-template.json") }, context);
    expect(byId.parameters.CertificateId).toBe(context.certificateId);
    expect(byId.resources.certificate?.properties).toEqual({ CertificateId: context.certificateId });
  });
});

describe("evaluateProvisioningTemplate: the factory template (every supported function)", () => {
  const field = () => ({ templateBody: fixture("factory-template.json") });

  it("a production device in the EU: Mappings, Conditions, Join, Select, Split, Sub, FindInMap, If, Base64", async () => {
    const context = await deviceContext(
      { CN: "sensor-42", O: "acme", C: "DE", ST: "Bavaria", L: "Munich" },
      { recordAttributes: { Site: "hall-7" } },
    );
    const template = evaluate(field(), context);
    expect(template.conditions).toEqual({
      IsProd: true,
      IsEu: true,
      ProdInEu: true,
      NotProdInEu: false,
      Lab: false,
    });
    expect(template.parameters).toMatchObject({
      "AWS::IoT::Certificate::OrganizationalUnit": "field",
      "AWS::IoT::Certificate::StateName": "Bavaria",
      "AWS::IoT::Certificate::Locality": "Munich",
    });
    expect(template.thing).toEqual({
      thingName: "sensor-42",
      thingTypeName: "sensor-DE",
      attributes: {
        label: "acme_sensor-42",
        site: "hall-7",
        model: "42",
        tier: "gold",
        token: Buffer.from("hall-7").toString("base64"),
      },
      thingGroups: ["eu-devices", "fleet"],
    });
    expect(Object.keys(template.resources)).toEqual(["thing", "certificate", "euPolicy"]);
    expect(template.policy).toEqual({
      logicalName: "euPolicy",
      perDevice: true,
      document: {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: "iot:Connect",
            Resource: "arn:aws:iot:eu-west-1:111122223333:client/${iot:Connection.Thing.ThingName}",
          },
          {
            Effect: "Allow",
            Action: "iot:Publish",
            Resource: "arn:aws:iot:eu-west-1:111122223333:topic/sites/hall-7/sensor-42/*",
          },
        ],
      },
    });
  });

  it("a test device in the US: the other branches, AWS::NoValue dropped, the named policy", async () => {
    const context = await deviceContext(
      { CN: "sensor-43", O: "acme", C: "US", OU: "lab" },
      { recordAttributes: { Site: "yard" } },
    );
    const template = evaluate({ ...field(), parameters: { Environment: "test" } }, context);
    expect(template.conditions).toEqual({
      IsProd: false,
      IsEu: false,
      ProdInEu: false,
      NotProdInEu: true,
      Lab: true,
    });
    expect(template.thing?.attributes).toMatchObject({ stage: "test", tier: "gold" });
    expect(template.thing?.thingGroups).toEqual(["us-devices", "lab", "fleet"]);
    expect(template.policy).toEqual({ logicalName: "fleetPolicy", policyName: "fleet-test" });
  });

  it("denies, naming the parameter, when a certificate value fails AllowedPattern, AllowedValues or is missing", async () => {
    const site = { recordAttributes: { Site: "hall-7" } };
    expect(failure(field(), await deviceContext({ CN: "Sensor_42", O: "acme", C: "DE" }, site))).toEqual({
      parameter: "AWS::IoT::Certificate::CommonName",
      error: expect.stringMatching(/"Sensor_42" does not match AllowedPattern \[a-z\]\+-\[0-9\]\+/),
    });
    expect(failure(field(), await deviceContext({ CN: "sensor-1", O: "acme", C: "GB" }, site))).toEqual({
      parameter: "AWS::IoT::Certificate::Country",
      error: expect.stringMatching(/"GB" is not one of AllowedValues DE, FR, US/),
    });
    expect(failure(field(), await deviceContext({ CN: "sensor-1", C: "DE" }, site))).toMatchObject({
      parameter: "AWS::IoT::Certificate::Organization",
    });
  });

  it("denies, naming the parameter, when a record or mapping value fails MaxLength, AllowedValues or is missing", async () => {
    const subject = { CN: "sensor-44", O: "acme", C: "FR" };
    expect(failure(field(), await deviceContext(subject))).toEqual({
      parameter: "Site",
      error: "parameter Site has no value: no record attribute, mapping parameter or Default supplies one",
    });
    expect(
      failure(field(), await deviceContext(subject, { recordAttributes: { Site: "s".repeat(33) } })),
    ).toEqual({
      parameter: "Site",
      error: expect.stringMatching(/parameter Site \(from the record\): .* is longer than MaxLength 32/),
    });
    const staging = { ...field(), parameters: { Environment: "staging" } };
    expect(failure(staging, await deviceContext(subject, { recordAttributes: { Site: "s1" } }))).toEqual({
      parameter: "Environment",
      error: expect.stringMatching(
        /parameter Environment \(from the mapping\): "staging" is not one of AllowedValues/,
      ),
    });
  });
});

describe("evaluateProvisioningTemplate: what cannot be evaluated for a device", () => {
  const body = (resources: Record<string, unknown>, parameters: Record<string, unknown> = {}) => ({
    templateBody: { Parameters: { Name: { Type: "String" }, ...parameters }, Resources: resources },
  });
  const named = (thingName: unknown) => ({
    thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: thingName } },
  });

  it("a thing name that is not a valid thing name, naming the parameter it came from", async () => {
    const context = await deviceContext({ CN: "dev-1" }, { recordAttributes: { Name: "has space" } });
    expect(failure(body(named({ Ref: "Name" })), context)).toEqual({
      parameter: "Name",
      error:
        'Resources.thing.Properties.ThingName: "has space" is not a thing name ([a-zA-Z0-9:_-]{1,128}) (from parameter Name)',
    });
  });

  it("Fn::Select outside its list", async () => {
    const context = await deviceContext({ CN: "dev-1" }, { recordAttributes: { Name: "a-b" } });
    const select = named({ "Fn::Select": [2, { "Fn::Split": ["-", { Ref: "Name" }] }] });
    expect(failure(body(select), context)).toEqual({
      parameter: "Name",
      error: expect.stringMatching(/Fn::Select: index 2 is outside the list of 2/),
    });
  });

  it("a per-device value that would widen a policy document", async () => {
    const policy = {
      Type: "AWS::IoT::Policy",
      Properties: {
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Action: "iot:Publish", Resource: { "Fn::Sub": "topic/${Name}/data" } },
          ],
        },
      },
    };
    const context = await deviceContext({ CN: "dev-1" }, { recordAttributes: { Name: "a/#" } });
    expect(failure(body({ policy }), context)).toEqual({
      parameter: "Name",
      error: expect.stringMatching(/the value of parameter Name has characters not allowed in a policy/),
    });
  });

  it("two policies whose conditions both hold", async () => {
    const policy = { Type: "AWS::IoT::Policy", Properties: { PolicyName: "p" } };
    const field = {
      templateBody: {
        Parameters: { Name: { Type: "String" } },
        Conditions: { Yes: { "Fn::Equals": [{ Ref: "Name" }, "x"] } },
        Resources: { p1: policy, p2: { ...policy, Condition: "Yes" } },
      },
    };
    const context = await deviceContext({ CN: "dev-1" }, { recordAttributes: { Name: "x" } });
    expect(failure(field, context).error).toMatch(/more than one AWS::IoT::Policy applies \(p1, p2\)/);
  });

  it("a template saved before validation existed is refused with the validation's reasons", async () => {
    const context = await deviceContext({ CN: "dev-1" });
    expect(
      failure({ templateBody: { Resources: { x: { Type: "AWS::S3::Bucket" } } } }, context).error,
    ).toMatch(/^the template is invalid: templateBody.Resources.x.Type: unsupported resource type/);
  });

  it("a certificate Status from a condition: INACTIVE is reported, for the decision to quarantine", async () => {
    const field = {
      templateBody: {
        Parameters: { Name: { Type: "String" } },
        Conditions: { Trusted: { "Fn::Equals": [{ Ref: "Name" }, "trusted"] } },
        Resources: {
          certificate: {
            Type: "AWS::IoT::Certificate",
            Properties: {
              CertificateId: { Ref: "AWS::IoT::Certificate::Id" },
              Status: { "Fn::If": ["Trusted", "Active", "Inactive"] },
            },
          },
        },
      },
    };
    const trusted = await deviceContext({ CN: "dev-1" }, { recordAttributes: { Name: "trusted" } });
    expect(evaluate(field, trusted).certificateStatus).toBe("ACTIVE");
    const other = await deviceContext({ CN: "dev-2" }, { recordAttributes: { Name: "other" } });
    expect(evaluate(field, other).certificateStatus).toBe("INACTIVE");
  });

  it("title and dnQualifier subject attributes fill Title and DistinguishedNameQualifier", async () => {
    const context = await deviceContext({ CN: "dev-1" });
    context.certificate.subjectAttributes.title = "Engineer";
    context.certificate.subjectAttributes.dnQualifier = "q1";
    const field = {
      templateBody: {
        Parameters: {
          "AWS::IoT::Certificate::Title": { Type: "String" },
          "AWS::IoT::Certificate::DistinguishedNameQualifier": { Type: "String" },
        },
        Resources: {
          thing: {
            Type: "AWS::IoT::Thing",
            Properties: {
              AttributePayload: {
                title: { Ref: "AWS::IoT::Certificate::Title" },
                dnq: { Ref: "AWS::IoT::Certificate::DistinguishedNameQualifier" },
              },
            },
          },
        },
      },
    };
    expect(evaluate(field, context).thing?.attributes).toEqual({ title: "Engineer", dnq: "q1" });
  });
});

describe("evaluateProvisioningTemplate: keys that name Object.prototype members", () => {
  it("Fn::FindInMap finds only the template's own mappings, never constructor.name or toString", async () => {
    // Prepare
    const context = await deviceContext({ CN: "proto-0001" });
    const withLookup = (args: string[]): ProvisioningTemplateField => ({
      templateBody: {
        Mappings: { Sites: { a: { b: "site-a" } } },
        Parameters: { ThingName: { Type: "String" } },
        Resources: {
          thing: {
            Type: "AWS::IoT::Thing",
            Properties: {
              ThingName: { Ref: "ThingName" },
              AttributePayload: { site: { "Fn::FindInMap": args } },
            },
          },
        },
      },
    });

    // Act
    const viaConstructor = failure(withLookup(["constructor", "name", "length"]), context);
    const viaToString = failure(withLookup(["Sites", "a", "toString"]), context);

    // Assess: the lookup misses, as for any absent key, instead of reading the prototype
    expect(viaConstructor.error).toContain("mapping constructor has no value for name.length");
    expect(viaToString.error).toContain("mapping Sites has no value for a.toString");
    expect(evaluate(withLookup(["Sites", "a", "b"]), context).thing?.attributes).toEqual({ site: "site-a" });
  });
});
