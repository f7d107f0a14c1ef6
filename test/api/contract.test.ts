/** The admin API contract's pure parts: paths, ETags, query parameters, error bodies, service fields. */
import { describe, expect, it } from "vitest";
import {
  adminPaths,
  conditionHeaders,
  errorBody,
  etagOf,
  fieldIssuesOf,
  parseErrorBody,
  queryOf,
  versionOfTag,
  withoutServiceFields,
} from "../../api/contract.ts";

describe("admin API contract", () => {
  it("builds each path with its name as one encoded segment", () => {
    // Prepare
    const name = "a/b c:#?%";

    // Act
    const paths = [
      adminPaths.allowlistRecord(name),
      adminPaths.mapping(name),
      adminPaths.lot(name),
      adminPaths.approve(name),
      adminPaths.deprovision(name),
      adminPaths.history(name),
    ];

    // Assess
    expect(paths).toEqual([
      "allowlist/a%2Fb%20c%3A%23%3F%25",
      "mappings/a%2Fb%20c%3A%23%3F%25",
      "lots/a%2Fb%20c%3A%23%3F%25",
      "devices/a%2Fb%20c%3A%23%3F%25/approve",
      "devices/a%2Fb%20c%3A%23%3F%25/deprovision",
      "devices/a%2Fb%20c%3A%23%3F%25/history",
    ]);
  });

  it("makes an ETag of a version and reads the version back, quotes and W/ tolerated", () => {
    // Prepare
    const tags = [etagOf(7), etagOf(undefined), 'W/"12"', "3", '"x"', "", '"1.5"'];

    // Act
    const versions = tags.map(versionOfTag);

    // Assess
    expect(tags.slice(0, 2)).toEqual(['"7"', '"0"']);
    expect(versions).toEqual([7, 0, 12, 3, undefined, undefined, undefined]);
  });

  it("puts a precondition in its header, and sends only the query values given", () => {
    // Prepare
    const query = { status: "allowed", lot: undefined, limit: 5, cursor: "" };

    // Act
    const create = conditionHeaders({ ifNoneMatch: "*" });
    const update = conditionHeaders({ ifMatch: '"2"' });
    const sent = queryOf(query);

    // Assess
    expect(create).toEqual({ "if-none-match": "*" });
    expect(update).toEqual({ "if-match": '"2"' });
    expect(conditionHeaders(undefined)).toEqual({});
    expect(sent).toEqual({ status: "allowed", limit: "5", cursor: "" });
  });

  it("writes and reads the error body, details only when there are some", () => {
    // Prepare
    const details = [{ path: "lot", message: "must be a lot name" }];

    // Act
    const withDetails = errorBody("ValidationError", "lot: must be a lot name", details);
    const without = errorBody("NotFound", "no such route");

    // Assess
    expect(JSON.stringify(without)).toBe('{"error":{"code":"NotFound","message":"no such route"}}');
    expect(parseErrorBody(JSON.stringify(withDetails))).toEqual(withDetails.error);
    expect(parseErrorBody('{"error":{"message":"m"}}')).toEqual({ code: "Error", message: "m" });
    expect(parseErrorBody("<html>")).toBeUndefined();
    expect(parseErrorBody('{"message":"not an error body"}')).toBeUndefined();
    expect(fieldIssuesOf(details)).toEqual(details);
    expect(fieldIssuesOf({ mode: "best-effort" })).toEqual([]);
  });

  it("leaves out the fields the service writes", () => {
    // Prepare
    const stored = {
      deviceId: "d",
      status: "allowed",
      version: 3,
      createdAt: "t",
      updatedAt: "t",
      updatedBy: "me",
      certificateId: "c",
      thingName: "d",
      policyName: "p",
      provisionedAt: "t",
      provisionedCount: 1,
    };

    // Act
    const fields = withoutServiceFields(stored);

    // Assess
    expect(fields).toEqual({ deviceId: "d", status: "allowed" });
  });
});
