import { describe, expect, it } from "vitest";
import type { ProvisionDeps } from "../../domain/provision.ts";
import { provision } from "../../domain/provision.ts";
import type { AllowlistRecord, Lot, PolicyMapping, RegisteredEvent } from "../../domain/types.ts";
import { allowed, makeWorld } from "../support/world.ts";

/** What a `kill -9` does to a run: the call it was in lands or not, and nothing after it happens. */
class Killed extends Error {
  constructor() {
    super("process killed");
  }
}

/**
 * Kills the run at its `at`-th port call: before the call reaches the store ("before") or after it landed but
 * before its answer was seen ("after"). From then on every call, sleep included, fails as in a dead process,
 * so no catch handler can write anything.
 */
class Killer {
  calls = 0;
  dead = false;
  constructor(
    readonly at: number,
    readonly when: "before" | "after",
  ) {}

  wrap<T extends object>(port: T): T {
    return new Proxy(port, {
      get: (target, property, receiver) => {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          if (this.dead) throw new Killed();
          this.calls += 1;
          const here = this.calls === this.at;
          if (here && this.when === "before") {
            this.dead = true;
            throw new Killed();
          }
          const result = await value.apply(target, args);
          if (here) {
            this.dead = true;
            throw new Killed();
          }
          return result;
        };
      },
    });
  }

  deps(deps: ProvisionDeps): ProvisionDeps {
    const clock = deps.clock;
    return {
      ...deps,
      iot: this.wrap(deps.iot),
      allowlist: this.wrap(deps.allowlist),
      mappings: this.wrap(deps.mappings),
      lots: this.wrap(deps.lots),
      ledger: this.wrap(deps.ledger),
      clock: {
        now: () => clock.now(),
        sleep: async (ms: number) => {
          if (this.dead) throw new Killed();
          await clock.sleep(ms);
        },
      },
    };
  }
}

interface Scenario {
  name: string;
  record: AllowlistRecord;
  mapping: PolicyMapping;
  lots?: Lot[];
  /** What an uninterrupted run comes to. */
  expected: "provisioned" | "denied";
}

const scenarios: Scenario[] = [
  {
    name: "a per-device policy and a lot (the soak's fleet)",
    record: allowed("dev-1", { lot: "L1" }),
    mapping: {
      selector: "default",
      policy: { template: "per-device-sensor" },
      attributes: { site: "north" },
      version: 1,
    },
    lots: [{ lot: "L1", maxDevices: 5, provisionedCount: 0 }],
    expected: "provisioned",
  },
  {
    name: "a shared policy",
    record: allowed("dev-1"),
    mapping: { selector: "default", policy: { template: "sensor" }, version: 1 },
    expected: "provisioned",
  },
  {
    name: "a blocked device",
    record: allowed("dev-1", { status: "blocked" }),
    mapping: { selector: "default", policy: { template: "sensor" }, version: 1 },
    expected: "denied",
  },
];

const arnOf = (id: string) => `arn:aws:iot:us-east-1:123456789012:cert/${id}`;

/** Port calls an uninterrupted run makes. */
async function callsOfOneRun(scenario: Scenario): Promise<number> {
  const world = makeWorld({ records: [scenario.record], mappings: [scenario.mapping], lots: scenario.lots });
  const { event } = await world.register("dev-1");
  const counter = new Killer(Number.POSITIVE_INFINITY, "before");
  await expect(provision(event, counter.deps(world.deps))).resolves.toMatchObject({
    outcome: scenario.expected,
  });
  return counter.calls;
}

/** Redelivers the event, as the queue does after a crash, until a run finishes (at most a few times). */
async function redeliver(event: RegisteredEvent, deps: ProvisionDeps) {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await provision(event, deps);
    } catch (error) {
      last = error;
    }
  }
  throw last;
}

describe("a run killed at any port call, then its event redelivered (I1-I3, lot counts)", () => {
  for (const scenario of scenarios) {
    it(`${scenario.name}: every kill point ends with one terminal outcome and a complete certificate`, async () => {
      const total = await callsOfOneRun(scenario);
      expect(total).toBeGreaterThan(5);
      const failures: string[] = [];
      for (let at = 1; at <= total; at++) {
        for (const when of ["before", "after"] as const) {
          const world = makeWorld({
            records: [scenario.record],
            mappings: [scenario.mapping],
            lots: scenario.lots,
          });
          const { event } = await world.register("dev-1");
          const id = event.certificateId;
          await expect(provision(event, new Killer(at, when).deps(world.deps))).rejects.toThrow(
            "process killed",
          );

          const result = await redeliver(event, world.deps);
          const where = `killed ${when} call ${at} of ${total}`;
          const terminal = world.ledger.entries.filter(
            (e) => e.certificateId === id && (e.kind === "provisioned" || e.kind === "denied"),
          );
          const status = world.iot.statusOf(id);
          const record = await world.allowlist.get("dev-1");
          const check = (ok: boolean, what: string) => {
            if (!ok) failures.push(`${where}: ${what}`);
          };
          check(
            terminal.length === 1 && terminal[0]?.kind === scenario.expected,
            `terminal outcomes ${JSON.stringify(terminal.map((e) => e.kind))}, redelivery ${result.outcome}`,
          );
          if (scenario.expected === "provisioned") {
            check(status === "ACTIVE", `certificate ${status}`);
            check(world.iot.thingPrincipals.get("dev-1")?.has(arnOf(id)) === true, "thing not attached");
            const policy = record?.policyName;
            check(
              policy !== undefined && world.iot.policyTargets.get(policy)?.has(arnOf(id)) === true,
              `policy ${policy} not attached`,
            );
            check(record?.certificateId === id && record.provisionedAt !== undefined, "binding not complete");
          } else {
            check(status !== "ACTIVE" && status !== "PENDING_ACTIVATION", `certificate ${status}`);
            check(world.iot.things.size === 0, "a thing was created");
          }
          for (const lot of scenario.lots ?? []) {
            const counted = [...world.allowlist.records.values()].filter((r) => r.lotCounted === lot.lot);
            check(
              world.lots.lots.get(lot.lot)?.provisionedCount === counted.length,
              `lot ${lot.lot} counts ${world.lots.lots.get(lot.lot)?.provisionedCount}, ${counted.length} marked`,
            );
          }
          // A further redelivery is settled: it changes nothing and records nothing.
          const entries = world.ledger.entries.length;
          const again = await provision(event, world.deps);
          check(again.outcome === "skipped", `a second redelivery was ${again.outcome}`);
          check(world.ledger.entries.length === entries, "a second redelivery wrote the ledger");
        }
      }
      expect(failures).toEqual([]);
    });
  }
});
