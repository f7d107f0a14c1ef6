import { describe, expect, it } from "vitest";
import { thingNameWarnings } from "../../../domain/jitp/index.ts";
import type { DeviceIdStrategy } from "../../../domain/types.ts";
import { fixture } from "./fixtures.ts";

const CONTEXT = {
  deviceIdStrategy: "cn" as DeviceIdStrategy,
  region: "eu-west-1",
  accountId: "111122223333",
};
const PATH = "provisioningTemplate.templateBody.Resources.thing.Properties.ThingName";

/** A mapping whose template declares every certificate parameter and `Fleet`, and names its thing so. */
const mapping = (selector: string, ThingName: unknown, condition?: string) => ({
  selector,
  provisioningTemplate: {
    templateBody: {
      Parameters: {
        "AWS::IoT::Certificate::CommonName": { Type: "String" },
        "AWS::IoT::Certificate::SerialNumber": { Type: "String" },
        "AWS::IoT::Certificate::Id": { Type: "String" },
        ThingName: { Type: "String" },
        Fleet: { Type: "String", Default: "north" },
      },
      ...(condition ? { Conditions: { [condition]: { "Fn::Equals": [{ Ref: "Fleet" }, "north"] } } } : {}),
      Resources: {
        thing: {
          Type: "AWS::IoT::Thing",
          ...(condition ? { Condition: condition } : {}),
          Properties: { ThingName },
        },
        cert: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" } },
        },
      },
    },
  },
});

const messages = (m: ReturnType<typeof mapping>, strategy: DeviceIdStrategy = "cn") =>
  thingNameWarnings(m, { ...CONTEXT, deviceIdStrategy: strategy }).map((w) => w.message);

describe("thingNameWarnings: a template that cannot give the devices it serves their device id as thing name", () => {
  it("a literal thing name on a selector serving many devices", () => {
    // Act
    const warnings = thingNameWarnings(mapping("profile:bulbs", "kitchen-bulb"), CONTEXT);

    // Assess
    expect(warnings).toEqual([
      {
        code: "thing-name-mismatch",
        path: PATH,
        message: expect.stringContaining(
          'names the thing "kitchen-bulb" for every device this mapping serves',
        ),
      },
    ]);
  });

  it("on device:<id>, a literal other than <id> warns; <id> itself does not", () => {
    expect(messages(mapping("device:bulb-1", "bulb-2"))).toEqual([
      expect.stringContaining('names the thing "bulb-2", not bulb-1'),
    ]);
    expect(messages(mapping("device:bulb-1", "bulb-1"))).toEqual([]);
    expect(messages(mapping("device:bulb-1", { "Fn::Sub": "bulb-1" }))).toEqual([]);
  });

  it("values that are the same for every device: AWS::Region, AWS::AccountId, a Sub without variables", () => {
    expect(messages(mapping("default", { Ref: "AWS::Region" }))).toEqual([
      expect.stringContaining('"eu-west-1"'),
    ]);
    expect(messages(mapping("default", { Ref: "AWS::AccountId" }))).toEqual([
      expect.stringContaining('"111122223333"'),
    ]);
    expect(messages(mapping("default", { "Fn::Sub": "fixed" }))).toEqual([
      expect.stringContaining('"fixed"'),
    ]);
  });

  it("the certificate id, by parameter or by the certificate resource, is never a device id", () => {
    expect(messages(mapping("default", { Ref: "AWS::IoT::Certificate::Id" }))).toEqual([
      expect.stringContaining("after the certificate id"),
    ]);
    expect(messages(mapping("default", { Ref: "cert" }))).toEqual([
      expect.stringContaining("after the certificate id"),
    ]);
  });

  it("a certificate field other than the one the device-id strategy reads", () => {
    // Act
    const serialUnderCn = messages(
      mapping("profile:bySerial", { Ref: "AWS::IoT::Certificate::SerialNumber" }),
    );
    const cnUnderSerial = messages(
      mapping("default", { Ref: "AWS::IoT::Certificate::CommonName" }),
      "serialNumber",
    );
    const cnUnderSan = messages(mapping("default", { Ref: "AWS::IoT::Certificate::CommonName" }), "san-uri");
    const subUnderCn = messages(mapping("default", { "Fn::Sub": "${AWS::IoT::Certificate::SerialNumber}" }));

    // Assess
    expect(serialUnderCn).toEqual([
      expect.stringContaining("after the certificate's serialNumber (AWS::IoT::Certificate::SerialNumber)"),
    ]);
    expect(serialUnderCn[0]).toContain("while the device id is its CN");
    expect(cnUnderSerial).toEqual([
      expect.stringContaining("while the device id is its subject serialNumber"),
    ]);
    expect(cnUnderSan).toEqual([expect.stringContaining("a URI SAN")]);
    expect(subUnderCn).toHaveLength(1);
  });

  it("names the Condition under which the thing resource applies", () => {
    expect(messages(mapping("default", "x", "North"))).toEqual([
      expect.stringContaining("(when its Condition North holds)"),
    ]);
  });
});

describe("thingNameWarnings: no warning where the thing name can be the device id", () => {
  it.each([
    ["the field the strategy reads (CN, strategy cn)", { Ref: "AWS::IoT::Certificate::CommonName" }, "cn"],
    [
      "the field the strategy reads (serialNumber, strategy serialNumber)",
      { Ref: "AWS::IoT::Certificate::SerialNumber" },
      "serialNumber",
    ],
    [
      "the ThingName parameter (the device id unless a record attribute says otherwise)",
      { Ref: "ThingName" },
      "cn",
    ],
    ["a parameter a record attribute may fill", { Ref: "Fleet" }, "cn"],
    ["an expression of several values", { "Fn::Join": ["-", [{ Ref: "Fleet" }, "x"]] }, "cn"],
  ] as const)("%s", (_what, ThingName, strategy) => {
    expect(messages(mapping("profile:p", ThingName), strategy)).toEqual([]);
  });

  it("templates that name no thing, mappings without a template, and the project's fixtures", () => {
    // Prepare
    const noThingName = {
      selector: "default",
      provisioningTemplate: {
        templateBody: { Resources: { thing: { Type: "AWS::IoT::Thing", Properties: {} } } },
      },
    };

    // Act
    const found = [
      thingNameWarnings(noThingName, CONTEXT),
      thingNameWarnings({ selector: "default" }, CONTEXT),
      thingNameWarnings(
        { selector: "default", provisioningTemplate: { templateBody: "{not json" } },
        CONTEXT,
      ),
      thingNameWarnings(
        { selector: "default", provisioningTemplate: { templateBody: fixture("factory-template.json") } },
        CONTEXT,
      ),
      thingNameWarnings(
        { selector: "default", provisioningTemplate: { templateBody: fixture("lightbulb-template.json") } },
        CONTEXT,
      ),
    ];

    // Assess
    expect(found).toEqual([[], [], [], [], []]);
  });
});
