import { describe, expect, it } from "vitest";
import { mappingSelectors, selectMapping } from "../../domain/select-policy.ts";
import type { PolicyMapping } from "../../domain/types.ts";
import { allowed } from "../support/world.ts";

const m = (selector: string): PolicyMapping => ({ selector, policy: { template: "sensor" }, version: 1 });
const ca = "c".repeat(64);

describe("policy selection precedence", () => {
  const record = allowed("dev-1", { profile: "outdoor", thingType: "Sensor" });
  const selectors = mappingSelectors("dev-1", record, ca);

  it("lists selectors device > profile > thingType > ca > default", () => {
    expect(selectors).toEqual(["device:dev-1", "profile:outdoor", "thingType:Sensor", `ca:${ca}`, "default"]);
  });

  it.each([
    [["default", `ca:${ca}`, "thingType:Sensor", "profile:outdoor", "device:dev-1"], "device:dev-1"],
    [["default", `ca:${ca}`, "thingType:Sensor", "profile:outdoor"], "profile:outdoor"],
    [["default", `ca:${ca}`, "thingType:Sensor"], "thingType:Sensor"],
    [["default", `ca:${ca}`], `ca:${ca}`],
    [["default"], "default"],
  ])("with %j present, %s wins", (present, winner) => {
    expect(selectMapping(selectors, present.map(m))?.selector).toBe(winner);
  });

  it("skips selectors for fields the record lacks, and finds nothing when nothing matches", () => {
    expect(mappingSelectors("dev-1", allowed("dev-1"), ca)).toEqual(["device:dev-1", `ca:${ca}`, "default"]);
    expect(selectMapping(selectors, [m("profile:indoor"), m("device:dev-2")])).toBeUndefined();
  });
});
