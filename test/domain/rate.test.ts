import { describe, expect, it } from "vitest";
import { JitrError, ThrottlingError, TransientError } from "../../domain/errors.ts";
import {
  AdaptiveRate,
  DEFAULT_IOT_QUOTA,
  DEFAULT_IOT_QUOTAS,
  defaultRateTuning,
  operationOf,
  parseIotQuotas,
  quotaOf,
  RateController,
  rateControlledIot,
} from "../../domain/rate.ts";
import { FakeClock } from "../support/fakes.ts";

const tuning = { ...defaultRateTuning, floor: 0.2 };

describe("AdaptiveRate", () => {
  it("paces calls evenly at the ceiling: one token now, then one every 1/rate seconds", () => {
    // Prepare
    const rate = new AdaptiveRate(10, tuning, 0);

    // Act
    const waits = Array.from({ length: 5 }, () => rate.reserve(0));

    // Assess
    expect(waits.map((w) => Math.round(w))).toEqual([0, 100, 200, 300, 400]);
    expect(rate.rate).toBe(10);
  });

  it("refills with time: a caller after a pause goes at once", () => {
    // Prepare
    const rate = new AdaptiveRate(10, tuning, 0);
    rate.reserve(0);

    // Act
    const wait = rate.reserve(150);

    // Assess
    expect(wait).toBe(0);
  });

  it("cuts the rate on a throttle, at most once per cut interval", () => {
    // Prepare
    const rate = new AdaptiveRate(10, tuning, 0);

    // Act
    rate.throttled(1_000);
    rate.throttled(1_500);
    const afterOne = rate.rate;
    rate.throttled(2_000);

    // Assess
    expect(afterOne).toBe(10 * tuning.decrease);
    expect(rate.rate).toBe(10 * tuning.decrease ** 2);
  });

  it("never cuts below the floor", () => {
    // Prepare
    const rate = new AdaptiveRate(10, tuning, 0);

    // Act
    for (let t = 0; t < 60_000; t += 1_000) rate.throttled(t);

    // Assess
    expect(rate.rate).toBe(0.2);
  });

  it("recovers slowly after a throttle while callers wait", () => {
    // Prepare
    const rate = new AdaptiveRate(10, tuning, 0);
    rate.throttled(0);
    const cut = rate.rate;

    // Act: callers keep the bucket in deficit for 10 s
    for (let t = 0; t <= 10_000; t += 50) rate.reserve(t);

    // Assess
    expect(rate.rate).toBeCloseTo(cut + 10 * tuning.recoveryPerSecond * 10, 1);
  });

  it("does not grow while nobody waits", () => {
    // Prepare
    const rate = new AdaptiveRate(10, tuning, 0);
    rate.throttled(0);
    const cut = rate.rate;

    // Act: one call every 5 s, far below the rate
    for (let t = 0; t <= 60_000; t += 5_000) rate.reserve(t);

    // Assess
    expect(rate.rate).toBe(cut);
  });

  it("starts at a share of the ceiling and doubles per second of demand until the first throttle", () => {
    // Prepare
    const rate = new AdaptiveRate(10, { ...tuning, initial: 2.5 }, 0);

    // Act
    for (let t = 0; t <= 1_000; t += 10) rate.reserve(t);
    const afterOneSecond = rate.rate;
    for (let t = 1_000; t <= 5_000; t += 10) rate.reserve(t);

    // Assess
    expect(afterOneSecond).toBeCloseTo(5, 1);
    expect(rate.rate).toBe(10);
  });

  it("refuses a rate that is not a positive number", () => {
    expect(() => new AdaptiveRate(0, tuning, 0)).toThrow(RangeError);
    expect(() => new AdaptiveRate(Number.NaN, tuning, 0)).toThrow(RangeError);
  });
});

/**
 * Instances sharing one account quota, simulated on a virtual clock: the service's token bucket holds one
 * second of the quota, each instance runs `workers` callers with its own AdaptiveRate, a throttled call
 * is retried after a backoff. Returns the calls served per second as a share of the quota.
 */
function simulate(instances: number, workers: number, seconds: number, quota = 10) {
  const service = { tokens: quota, at: 0 };
  const serve = (t: number) => {
    service.tokens = Math.min(quota, service.tokens + ((t - service.at) / 1000) * quota);
    service.at = t;
    if (service.tokens < 1) return false;
    service.tokens -= 1;
    return true;
  };
  const rates = Array.from(
    { length: instances },
    () => new AdaptiveRate(quota, { ...defaultRateTuning, floor: quota * 0.02, initial: quota / 2 }, 0),
  );
  type Step = { t: number; instance: number; attempt: number; send: boolean };
  const steps: Step[] = [];
  for (let i = 0; i < instances; i++)
    for (let w = 0; w < workers; w++) steps.push({ t: 0, instance: i, attempt: 1, send: false });
  let served = 0;
  let throttled = 0;
  let k = 0;
  while (steps.length > 0) {
    steps.sort((a, b) => a.t - b.t);
    const step = steps.shift();
    if (step === undefined || step.t > seconds * 1000) break;
    const rate = rates[step.instance] as AdaptiveRate;
    if (!step.send) {
      steps.push({ ...step, t: step.t + rate.reserve(step.t), send: true });
    } else if (serve(step.t)) {
      served += 1;
      steps.push({ t: step.t + 5, instance: step.instance, attempt: 1, send: false });
    } else {
      throttled += 1;
      rate.throttled(step.t);
      const backoff = Math.min(3000, 100 * 2 ** (step.attempt - 1)) * (0.5 + ((k++ * 7919) % 100) / 200);
      steps.push({ t: step.t + backoff, instance: step.instance, attempt: step.attempt + 1, send: false });
    }
  }
  return { ratio: served / seconds / quota, throttledShare: throttled / (served + throttled) };
}

describe("AIMD across instances that share one quota", () => {
  it("one instance uses the quota fully without a throttle", () => {
    const { ratio, throttledShare } = simulate(1, 5, 120);
    expect(ratio).toBeGreaterThanOrEqual(0.97);
    expect(throttledShare).toBe(0);
  });

  it("two instances (the deployed concurrency cap) use the quota with few throttles", () => {
    const { ratio, throttledShare } = simulate(2, 5, 300);
    expect(ratio).toBeGreaterThanOrEqual(0.95);
    expect(throttledShare).toBeLessThanOrEqual(0.02);
  });

  it("four instances still use the quota: the service's throttles bring each to its share", () => {
    const { ratio, throttledShare } = simulate(4, 5, 300);
    expect(ratio).toBeGreaterThanOrEqual(0.95);
    expect(throttledShare).toBeLessThanOrEqual(0.06);
  });
});

describe("RateController", () => {
  it("gives provisioning the whole quota and an admin job its share", async () => {
    // Prepare
    const clock = new FakeClock(new Date(0));
    const provisioning = new RateController({ priority: "provisioning", clock });
    const admin = new RateController({ priority: "admin", clock });

    // Act
    await provisioning.acquire("UpdateCertificate");
    await admin.acquire("UpdateCertificate");

    // Assess
    expect(provisioning.stats().UpdateCertificate?.rate).toBe(10);
    expect(admin.stats().UpdateCertificate?.rate).toBe(10 * defaultRateTuning.adminShare);
  });

  it("an admin job never backs off below half its share, so provisioning cannot starve it", () => {
    // Prepare
    const clock = new FakeClock(new Date(0));
    const admin = new RateController({ priority: "admin", clock });

    // Act
    for (let i = 0; i < 30; i++) {
      admin.throttled("UpdateCertificate");
      clock.set(new Date(clock.now().getTime() + 1_000));
    }

    // Assess
    expect(admin.stats().UpdateCertificate).toMatchObject({ throttled: 30, rate: 1 });
  });

  it("sleeps on the clock to pace calls and counts them by operation", async () => {
    // Prepare
    const clock = new FakeClock(new Date(0));
    const controller = new RateController({ priority: "provisioning", clock });

    // Act
    for (let i = 0; i < 11; i++) await controller.acquire("DescribeCertificate");

    // Assess
    expect(clock.now().getTime()).toBeGreaterThanOrEqual(1_000);
    expect(controller.stats().DescribeCertificate).toMatchObject({ calls: 11, throttled: 0 });
  });

  it("uses the configured quotas and factor", async () => {
    // Prepare
    const clock = new FakeClock(new Date(0));
    const quotas = parseIotQuotas('{"factor":2,"UpdateCertificate":50}');
    const controller = new RateController({ priority: "provisioning", clock, quotas });

    // Act
    await controller.acquire("UpdateCertificate");
    await controller.acquire("DescribeCertificate");

    // Assess
    expect(controller.stats().UpdateCertificate?.rate).toBe(100);
    expect(controller.stats().DescribeCertificate?.rate).toBe(20);
  });
});

describe("rateControlledIot", () => {
  class Port {
    calls: string[] = [];
    fail: Error | undefined;
    async describeCertificate(id: string): Promise<string> {
      this.calls.push(id);
      if (this.fail) throw this.fail;
      return `described ${id}`;
    }
    async updateCertificateStatus(id: string): Promise<void> {
      this.calls.push(id);
    }
    readonly name = "port";
  }

  it("passes arguments and results through and paces each operation", async () => {
    // Prepare
    const clock = new FakeClock(new Date(0));
    const controller = new RateController({ priority: "provisioning", clock });
    const port = new Port();
    const iot = rateControlledIot(port, { priority: "provisioning", clock, controller });

    // Act
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await iot.describeCertificate(`c${i}`));
    await iot.updateCertificateStatus("c0");

    // Assess
    expect(results).toEqual(["described c0", "described c1", "described c2"]);
    expect(iot.name).toBe("port");
    expect(clock.sleeps.map(Math.round)).toEqual([100, 100]);
    expect(controller.stats()).toMatchObject({
      DescribeCertificate: { calls: 3 },
      UpdateCertificate: { calls: 1 },
    });
  });

  it("a ThrottlingError cuts the operation's rate; other errors do not", async () => {
    // Prepare
    const clock = new FakeClock(new Date(0));
    const controller = new RateController({ priority: "provisioning", clock });
    const port = new Port();
    const iot = rateControlledIot(port, { priority: "provisioning", clock, controller });

    // Act
    port.fail = new TransientError("503");
    await expect(iot.describeCertificate("a")).rejects.toBeInstanceOf(TransientError);
    port.fail = new JitrError("denied");
    await expect(iot.describeCertificate("b")).rejects.toBeInstanceOf(JitrError);
    const before = controller.stats().DescribeCertificate?.rate;
    port.fail = new ThrottlingError("slow down");
    await expect(iot.describeCertificate("c")).rejects.toBeInstanceOf(ThrottlingError);

    // Assess
    expect(before).toBe(10);
    expect(controller.stats().DescribeCertificate).toMatchObject({
      calls: 3,
      throttled: 1,
      rate: 10 * defaultRateTuning.decrease,
    });
  });

  it("names operations as the IoT API does", () => {
    expect(operationOf("updateCertificateStatus")).toBe("UpdateCertificate");
    expect(operationOf("attachThingPrincipal")).toBe("AttachThingPrincipal");
  });
});

describe("parseIotQuotas", () => {
  it("is the published defaults when unset", () => {
    const quotas = parseIotQuotas(undefined);
    expect(quotaOf(quotas, "DescribeCertificate")).toBe(10);
    expect(quotaOf(quotas, "SomethingUnlisted")).toBe(DEFAULT_IOT_QUOTA);
    expect(parseIotQuotas("  ")).toEqual(parseIotQuotas(undefined));
  });

  it("takes a factor and per-operation figures", () => {
    const quotas = parseIotQuotas('{"factor":0.5,"DescribeCertificate":40}');
    expect(quotaOf(quotas, "DescribeCertificate")).toBe(20);
    expect(quotaOf(quotas, "UpdateCertificate")).toBe((DEFAULT_IOT_QUOTAS.UpdateCertificate ?? 0) * 0.5);
  });

  it.each([
    ["not JSON", "{factor:2}", /JSON object/],
    ["an array", "[2]", /JSON object/],
    ["a zero rate", '{"UpdateCertificate":0}', /UpdateCertificate must be a positive number/],
    ["a negative factor", '{"factor":-1}', /factor must be a positive number/],
    ["a string rate", '{"CreateThing":"10"}', /CreateThing must be a positive number/],
    ["an unknown key", '{"update_certificate":5}', /not an IoT operation name/],
  ])("refuses %s", (_label, raw, message) => {
    expect(() => parseIotQuotas(raw)).toThrow(message);
  });
});
