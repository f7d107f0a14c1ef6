/** The one versioned write every admin record goes through: preconditions, stamps, races, the ledger. */
import { describe, expect, it } from "vitest";
import { adminContext } from "../../../domain/admin/deps.ts";
import { type Content, writeVersioned } from "../../../domain/admin/versioned.ts";
import {
  PreconditionFailedError,
  PreconditionRequiredError,
  TransientError,
} from "../../../domain/errors.ts";
import type { PolicyMapping } from "../../../domain/types.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const KEY = "#mapping:default";

/** A write of the default mapping with the given template, under the given precondition. */
function writeDefault(
  world: ReturnType<typeof makeAdminWorld>,
  template: string,
  precondition: { create: true } | { version: number } | undefined,
) {
  const fields = { selector: "default", policy: { template } };
  return writeVersioned<Content<PolicyMapping>>(adminContext(world.deps), world.mappings, {
    actor: ACTOR,
    precondition,
    key: "default",
    what: "policy mapping default",
    ledgerKey: KEY,
    compose: () => ({ content: fields, fields }),
    fieldsOf: ({ selector, policy }) => ({ selector, policy }),
  });
}

describe("versioned writes", () => {
  it("creates at version 1, stamping createdAt, updatedAt and updatedBy, and records the change", async () => {
    // Prepare
    const world = makeAdminWorld();
    const now = world.clock.now().toISOString();

    // Act
    const written = await writeDefault(world, "sensor", { create: true });

    // Assess
    expect(written).toEqual({
      created: true,
      value: {
        selector: "default",
        policy: { template: "sensor" },
        version: 1,
        createdAt: now,
        updatedAt: now,
        updatedBy: ACTOR,
      },
    });
    expect(world.mappings.mappings.get("default")).toEqual(written.value);
    expect(world.ledger.entries).toEqual([
      {
        deviceId: KEY,
        at: now,
        kind: "admin",
        actor: ACTOR,
        change: {
          action: "create",
          after: { selector: "default", policy: { template: "sensor" } },
          version: 1,
        },
      },
    ]);
  });

  it("updates at the version read: version + 1, createdAt kept, the change recorded before and after", async () => {
    // Prepare
    const world = makeAdminWorld();
    const created = await writeDefault(world, "sensor", { create: true });
    world.clock.set(new Date(world.clock.now().getTime() + 60_000));

    // Act
    const updated = await writeDefault(world, "gateway", { version: 1 });

    // Assess
    expect(updated.created).toBe(false);
    expect(updated.value).toMatchObject({
      policy: { template: "gateway" },
      version: 2,
      createdAt: created.value.createdAt,
      updatedAt: world.clock.now().toISOString(),
    });
    expect(world.ledger.changes(KEY).at(-1)).toEqual({
      action: "update",
      before: { selector: "default", policy: { template: "sensor" } },
      after: { selector: "default", policy: { template: "gateway" } },
      version: 2,
      previousVersion: 1,
    });
  });

  it("refuses a create when the record exists, writing nothing", async () => {
    // Prepare
    const world = makeAdminWorld();
    await writeDefault(world, "sensor", { create: true });

    // Act
    const again = writeDefault(world, "gateway", { create: true });

    // Assess
    await expect(again).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(again).rejects.toMatchObject({
      failure: { kind: "exists", what: "policy mapping default" },
    });
    expect(world.mappings.mappings.get("default")?.policy).toEqual({ template: "sensor" });
    expect(world.ledger.entries).toHaveLength(1);
  });

  it("refuses an update at a stale version, naming both versions", async () => {
    // Prepare
    const world = makeAdminWorld();
    await writeDefault(world, "sensor", { create: true });
    await writeDefault(world, "gateway", { version: 1 });

    // Act
    const stale = writeDefault(world, "command-only", { version: 1 });

    // Assess
    await expect(stale).rejects.toMatchObject({
      failure: { kind: "stale", version: 1, stored: 2 },
      message: "policy mapping default is at version 2, not 1; read it again and retry",
    });
    expect(world.mappings.mappings.get("default")?.version).toBe(2);
  });

  it("refuses an update of a record that does not exist", async () => {
    // Prepare
    const world = makeAdminWorld();

    // Act
    const missing = writeDefault(world, "sensor", { version: 3 });

    // Assess
    await expect(missing).rejects.toMatchObject({ failure: { kind: "missing", version: 3 } });
    expect(world.mappings.mappings.size).toBe(0);
  });

  it("reports a write that loses a race after the read, and records nothing", async () => {
    // Prepare
    const world = makeAdminWorld();
    await writeDefault(world, "sensor", { create: true });
    world.mappings.beforeNextWrite(() => {
      world.mappings.mappings.set("default", {
        selector: "default",
        policy: { template: "other" },
        version: 2,
      });
    });

    // Act
    const raced = writeDefault(world, "gateway", { version: 1 });

    // Assess
    await expect(raced).rejects.toMatchObject({
      failure: { kind: "changed" },
      message: "policy mapping default was changed by someone else meanwhile; read it again and retry",
    });
    expect(world.mappings.mappings.get("default")?.policy).toEqual({ template: "other" });
    expect(world.ledger.entries).toHaveLength(1);
  });

  it("refuses a write that names no precondition (create or version), before touching the store", async () => {
    // Prepare
    const world = makeAdminWorld();

    // Act
    const bare = writeDefault(world, "sensor", undefined);

    // Assess
    await expect(bare).rejects.toBeInstanceOf(PreconditionRequiredError);
    await expect(bare).rejects.toMatchObject({ what: "policy mapping default" });
    expect(world.mappings.calls).toEqual([]);
  });

  it("retries the ledger entry on a transient error, and not the conditional write", async () => {
    // Prepare
    const world = makeAdminWorld();
    world.ledger.failOn("append", () => new TransientError("throttled"), 1);
    world.mappings.failOn("create", () => new TransientError("throttled"), 1);

    // Act
    const first = writeDefault(world, "sensor", { create: true });

    // Assess
    await expect(first).rejects.toBeInstanceOf(TransientError);
    expect(world.mappings.calls).toEqual(["create"]);
    await writeDefault(world, "sensor", { create: true });
    expect(world.ledger.calls).toEqual(["append", "append"]);
    expect(world.ledger.entries).toHaveLength(1);
  });
});
