import {
  AddThingToThingGroupCommand,
  AttachThingPrincipalCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  DeleteThingCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  DescribeThingTypeCommand,
  DetachThingPrincipalCommand,
  InvalidRequestException,
  LimitExceededException,
  ListPrincipalThingsCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
  ListThingsCommand,
  RegisterCertificateWithoutCACommand,
  RemoveThingFromThingGroupCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  UpdateThingCommand,
  VersionConflictException,
} from "@aws-sdk/client-iot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa } from "./certs.ts";
import { arn, type Harness, startHarness } from "./helpers.ts";

let h: Harness;

async function newCertificateArn(): Promise<string> {
  const cert = await createCa({ commonName: `principal-${Math.random()}` });
  const out = await h.iot.send(new RegisterCertificateWithoutCACommand({ certificatePem: cert.pem }));
  return out.certificateArn ?? "";
}

beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

describe("things", () => {
  it("creates and describes a thing with AWS-shaped ARN, id and version", async () => {
    const out = await h.iot.send(
      new CreateThingCommand({ thingName: "thing-a", attributePayload: { attributes: { site: "paris" } } }),
    );
    expect(out.thingName).toBe("thing-a");
    expect(out.thingArn).toBe(arn("thing", "thing-a"));
    expect(out.thingId).toMatch(/^[0-9a-f-]{36}$/);
    const d = await h.iot.send(new DescribeThingCommand({ thingName: "thing-a" }));
    expect(d).toMatchObject({
      thingName: "thing-a",
      thingId: out.thingId,
      thingArn: out.thingArn,
      defaultClientId: "thing-a",
      attributes: { site: "paris" },
      version: 1,
    });
    await expect(h.iot.send(new DescribeThingCommand({ thingName: "missing" }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it("is idempotent for an identical configuration and refuses a different one", async () => {
    const first = await h.iot.send(
      new CreateThingCommand({ thingName: "thing-idem", attributePayload: { attributes: { a: "1" } } }),
    );
    const again = await h.iot.send(
      new CreateThingCommand({ thingName: "thing-idem", attributePayload: { attributes: { a: "1" } } }),
    );
    expect(again.thingId).toBe(first.thingId);
    expect(again.thingArn).toBe(first.thingArn);
    const err = await h.iot
      .send(new CreateThingCommand({ thingName: "thing-idem", attributePayload: { attributes: { a: "2" } } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceAlreadyExistsException);
    expect((err as ResourceAlreadyExistsException).resourceArn).toBe(first.thingArn);
    await h.iot.send(new CreateThingTypeCommand({ thingTypeName: "idem-type" }));
    await expect(
      h.iot.send(
        new CreateThingCommand({
          thingName: "thing-idem",
          thingTypeName: "idem-type",
          attributePayload: { attributes: { a: "1" } },
        }),
      ),
    ).rejects.toBeInstanceOf(ResourceAlreadyExistsException);
    const d = await h.iot.send(new DescribeThingCommand({ thingName: "thing-idem" }));
    expect(d.attributes).toEqual({ a: "1" });
    expect(d.thingTypeName).toBeUndefined();
  });

  it("validates names and attribute counts (3 without a type, 50 with one)", async () => {
    for (const thingName of ["bad name", "bad/name", "x".repeat(129)]) {
      await expect(h.iot.send(new CreateThingCommand({ thingName }))).rejects.toBeInstanceOf(
        InvalidRequestException,
      );
    }
    const four = { a: "1", b: "2", c: "3", d: "4" };
    await expect(
      h.iot.send(new CreateThingCommand({ thingName: "too-many", attributePayload: { attributes: four } })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(h.iot.send(new DescribeThingCommand({ thingName: "too-many" }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    await h.iot.send(new CreateThingTypeCommand({ thingTypeName: "sensor" }));
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, `v${i}`]));
    await h.iot.send(
      new CreateThingCommand({
        thingName: "typed",
        thingTypeName: "sensor",
        attributePayload: { attributes: fifty },
      }),
    );
    await expect(
      h.iot.send(
        new CreateThingCommand({
          thingName: "typed-51",
          thingTypeName: "sensor",
          attributePayload: { attributes: { ...fifty, k50: "x" } },
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(
      h.iot.send(new CreateThingCommand({ thingName: "untyped-type", thingTypeName: "no-such-type" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("updates with merge/replace, versions, and expectedVersion checks", async () => {
    await h.iot.send(
      new CreateThingCommand({ thingName: "upd", attributePayload: { attributes: { a: "1", b: "2" } } }),
    );
    await h.iot.send(
      new UpdateThingCommand({
        thingName: "upd",
        attributePayload: { attributes: { b: "", c: "3" }, merge: true },
      }),
    );
    let d = await h.iot.send(new DescribeThingCommand({ thingName: "upd" }));
    expect(d.attributes).toEqual({ a: "1", c: "3" });
    expect(d.version).toBe(2);
    await expect(
      h.iot.send(
        new UpdateThingCommand({
          thingName: "upd",
          expectedVersion: 1,
          attributePayload: { attributes: {} },
        }),
      ),
    ).rejects.toBeInstanceOf(VersionConflictException);
    await h.iot.send(
      new UpdateThingCommand({
        thingName: "upd",
        expectedVersion: 2,
        attributePayload: { attributes: { z: "9" } },
      }),
    );
    d = await h.iot.send(new DescribeThingCommand({ thingName: "upd" }));
    expect(d.attributes).toEqual({ z: "9" });
    expect(d.version).toBe(3);
    await expect(
      h.iot.send(
        new UpdateThingCommand({
          thingName: "upd",
          attributePayload: { attributes: { a: "1", b: "2", c: "3" }, merge: true },
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    expect((await h.iot.send(new DescribeThingCommand({ thingName: "upd" }))).version).toBe(3);
  });

  it("deletes with version checks, refuses while principals are attached, and succeeds for a missing thing", async () => {
    await h.iot.send(new CreateThingCommand({ thingName: "del" }));
    const certArn = await newCertificateArn();
    await h.iot.send(new AttachThingPrincipalCommand({ thingName: "del", principal: certArn }));
    await expect(h.iot.send(new DeleteThingCommand({ thingName: "del" }))).rejects.toBeInstanceOf(
      InvalidRequestException,
    );
    await h.iot.send(new DetachThingPrincipalCommand({ thingName: "del", principal: certArn }));
    await expect(
      h.iot.send(new DeleteThingCommand({ thingName: "del", expectedVersion: 7 })),
    ).rejects.toBeInstanceOf(VersionConflictException);
    expect((await h.iot.send(new DescribeThingCommand({ thingName: "del" }))).thingName).toBe("del");
    await h.iot.send(new DeleteThingCommand({ thingName: "del", expectedVersion: 1 }));
    await expect(h.iot.send(new DescribeThingCommand({ thingName: "del" }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    await h.iot.send(new DeleteThingCommand({ thingName: "del" }));
  });

  it("lists things with filters and pagination", async () => {
    for (let i = 0; i < 5; i++) {
      await h.iot.send(
        new CreateThingCommand({
          thingName: `list-${i}`,
          attributePayload: { attributes: { fleet: i < 3 ? "north-1" : "south" } },
        }),
      );
    }
    const north = await h.iot.send(
      new ListThingsCommand({
        attributeName: "fleet",
        attributeValue: "north",
        usePrefixAttributeValue: true,
      }),
    );
    expect(north.things?.map((t) => t.thingName)).toEqual(["list-0", "list-1", "list-2"]);
    const exact = await h.iot.send(
      new ListThingsCommand({ attributeName: "fleet", attributeValue: "south" }),
    );
    expect(exact.things?.map((t) => t.thingName)).toEqual(["list-3", "list-4"]);
    const names: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await h.iot.send(
        new ListThingsCommand({ maxResults: 2, nextToken, attributeName: "fleet" }),
      );
      names.push(...(page.things ?? []).map((t) => t.thingName ?? ""));
      nextToken = page.nextToken;
      pages++;
    } while (nextToken);
    expect(names).toEqual(["list-0", "list-1", "list-2", "list-3", "list-4"]);
    expect(pages).toBe(3);
    const typed = await h.iot.send(new ListThingsCommand({ thingTypeName: "sensor" }));
    expect(typed.things?.map((t) => t.thingName)).toEqual(["typed"]);
  });
});

describe("thing types and groups", () => {
  it("creates and describes thing types, refusing duplicates", async () => {
    const out = await h.iot.send(
      new CreateThingTypeCommand({
        thingTypeName: "gateway",
        thingTypeProperties: { thingTypeDescription: "edge", searchableAttributes: ["site"] },
      }),
    );
    expect(out.thingTypeArn).toBe(arn("thingtype", "gateway"));
    const d = await h.iot.send(new DescribeThingTypeCommand({ thingTypeName: "gateway" }));
    expect(d.thingTypeId).toBe(out.thingTypeId);
    expect(d.thingTypeProperties?.thingTypeDescription).toBe("edge");
    expect(d.thingTypeProperties?.searchableAttributes).toEqual(["site"]);
    expect(d.thingTypeMetadata?.deprecated).toBe(false);
    expect(d.thingTypeMetadata?.creationDate).toBeInstanceOf(Date);
    await expect(h.iot.send(new CreateThingTypeCommand({ thingTypeName: "gateway" }))).rejects.toBeInstanceOf(
      ResourceAlreadyExistsException,
    );
    await expect(h.iot.send(new DescribeThingTypeCommand({ thingTypeName: "nope" }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it("creates groups idempotently, adds and removes things", async () => {
    const root = await h.iot.send(new CreateThingGroupCommand({ thingGroupName: "root" }));
    expect(root.thingGroupArn).toBe(arn("thinggroup", "root"));
    const child = await h.iot.send(
      new CreateThingGroupCommand({
        thingGroupName: "child",
        parentGroupName: "root",
        thingGroupProperties: { thingGroupDescription: "c" },
      }),
    );
    const again = await h.iot.send(
      new CreateThingGroupCommand({
        thingGroupName: "child",
        parentGroupName: "root",
        thingGroupProperties: { thingGroupDescription: "c" },
      }),
    );
    expect(again.thingGroupId).toBe(child.thingGroupId);
    await expect(
      h.iot.send(
        new CreateThingGroupCommand({
          thingGroupName: "child",
          thingGroupProperties: { thingGroupDescription: "d" },
        }),
      ),
    ).rejects.toBeInstanceOf(ResourceAlreadyExistsException);
    const d = await h.iot.send(new DescribeThingGroupCommand({ thingGroupName: "child" }));
    expect(d.thingGroupMetadata?.parentGroupName).toBe("root");
    expect(d.thingGroupMetadata?.rootToParentThingGroups).toEqual([
      { groupName: "root", groupArn: arn("thinggroup", "root") },
    ]);
    await expect(
      h.iot.send(new CreateThingGroupCommand({ thingGroupName: "orphan", parentGroupName: "none" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);

    await h.iot.send(new CreateThingCommand({ thingName: "member" }));
    await h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: "child", thingName: "member" }));
    await h.iot.send(
      new AddThingToThingGroupCommand({
        thingGroupArn: root.thingGroupArn,
        thingArn: arn("thing", "member"),
      }),
    );
    await h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: "child", thingName: "member" }));
    let groups = await h.iot.send(new ListThingGroupsForThingCommand({ thingName: "member" }));
    expect(groups.thingGroups?.map((g) => g.groupName)).toEqual(["child", "root"]);
    await expect(
      h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: "child", thingName: "ghost" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await h.iot.send(new RemoveThingFromThingGroupCommand({ thingGroupName: "child", thingName: "member" }));
    groups = await h.iot.send(new ListThingGroupsForThingCommand({ thingName: "member" }));
    expect(groups.thingGroups?.map((g) => g.groupName)).toEqual(["root"]);
  });

  it("limits a thing to 10 groups", async () => {
    await h.iot.send(new CreateThingCommand({ thingName: "joiner" }));
    for (let i = 0; i < 11; i++) await h.iot.send(new CreateThingGroupCommand({ thingGroupName: `g${i}` }));
    for (let i = 0; i < 10; i++)
      await h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: `g${i}`, thingName: "joiner" }));
    await expect(
      h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: "g10", thingName: "joiner" })),
    ).rejects.toBeInstanceOf(LimitExceededException);
  });
});

describe("thing principals", () => {
  it("attaches idempotently and lists both ways (principal travels in x-amzn-principal)", async () => {
    await h.iot.send(new CreateThingCommand({ thingName: "p-thing" }));
    const certArn = await newCertificateArn();
    await h.iot.send(new AttachThingPrincipalCommand({ thingName: "p-thing", principal: certArn }));
    await h.iot.send(new AttachThingPrincipalCommand({ thingName: "p-thing", principal: certArn }));
    const principals = await h.iot.send(new ListThingPrincipalsCommand({ thingName: "p-thing" }));
    expect(principals.principals).toEqual([certArn]);
    const things = await h.iot.send(new ListPrincipalThingsCommand({ principal: certArn }));
    expect(things.things).toEqual(["p-thing"]);
    await h.iot.send(new DetachThingPrincipalCommand({ thingName: "p-thing", principal: certArn }));
    expect((await h.iot.send(new ListThingPrincipalsCommand({ thingName: "p-thing" }))).principals).toEqual(
      [],
    );
  });

  it("refuses unknown things and certificates", async () => {
    const certArn = await newCertificateArn();
    await expect(
      h.iot.send(new AttachThingPrincipalCommand({ thingName: "no-thing", principal: certArn })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await h.iot.send(new CreateThingCommand({ thingName: "p-thing-2" }));
    await expect(
      h.iot.send(
        new AttachThingPrincipalCommand({ thingName: "p-thing-2", principal: arn("cert", "a".repeat(64)) }),
      ),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(
      h.iot.send(new AttachThingPrincipalCommand({ thingName: "p-thing-2", principal: "not-an-arn" })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(
      h.iot.send(new ListThingPrincipalsCommand({ thingName: "no-thing" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("enforces EXCLUSIVE_THING attachments", async () => {
    const certArn = await newCertificateArn();
    await h.iot.send(new CreateThingCommand({ thingName: "ex-1" }));
    await h.iot.send(new CreateThingCommand({ thingName: "ex-2" }));
    await h.iot.send(
      new AttachThingPrincipalCommand({
        thingName: "ex-1",
        principal: certArn,
        thingPrincipalType: "EXCLUSIVE_THING",
      }),
    );
    await expect(
      h.iot.send(new AttachThingPrincipalCommand({ thingName: "ex-2", principal: certArn })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    expect((await h.iot.send(new ListPrincipalThingsCommand({ principal: certArn }))).things).toEqual([
      "ex-1",
    ]);
  });
});
