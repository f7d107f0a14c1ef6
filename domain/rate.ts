/**
 * Quota-aware rate control for calls to AWS IoT: a token bucket per operation at the account's quota,
 * with adaptive back-off on throttling (AIMD: cut the local rate when the service throttles, recover
 * slowly). Several instances of a function share one account quota without knowing of each other: each
 * starts at the full rate and backs off when the service says the account is over it.
 */
import { ThrottlingError } from "./errors.ts";
import type { ClockPort } from "./ports.ts";

/**
 * AWS IoT Core API rate quotas, requests per second per account and region (DESIGN.md section 6).
 * `AutoRegisterCertificate` is the JITR registration rate, not an API operation.
 */
export const DEFAULT_IOT_QUOTAS: Readonly<Record<string, number>> = {
  DescribeCertificate: 10,
  UpdateCertificate: 10,
  RegisterCertificate: 10,
  CreatePolicy: 10,
  GetPolicy: 10,
  AttachPolicy: 15,
  DetachPolicy: 15,
  ListAttachedPolicies: 15,
  CreateThing: 100,
  DescribeThing: 350,
  AttachThingPrincipal: 100,
  DetachThingPrincipal: 100,
  DeleteThing: 100,
  AddThingToThingGroup: 100,
  ListThingPrincipals: 10,
  CreateThingType: 15,
  DescribeThingType: 100,
  CreateThingGroup: 25,
  AutoRegisterCertificate: 15,
};

/** Requests per second for an operation the table does not list: lower than most published quotas. */
export const DEFAULT_IOT_QUOTA = 20;

/** The account's quota figures: per-operation rates overriding the defaults, and a factor on all of them. */
export interface IotQuotas {
  rates: Readonly<Record<string, number>>;
  factor: number;
}

export const defaultIotQuotas: IotQuotas = { rates: DEFAULT_IOT_QUOTAS, factor: 1 };

/** Requests per second the account allows for `operation`. */
export const quotaOf = (quotas: IotQuotas, operation: string): number =>
  (quotas.rates[operation] ?? DEFAULT_IOT_QUOTAS[operation] ?? DEFAULT_IOT_QUOTA) * quotas.factor;

/**
 * Who calls: provisioning may use the whole quota and backs off freely; an admin job that changes IoT
 * state (block, reconcile, deprovision) runs at a share of it and never backs off below half that share,
 * so a burst of provisioning cannot starve it (provisioning yields the room by backing off).
 */
export type RatePriority = "provisioning" | "admin";

export interface RateTuning {
  /** Share of each quota an admin job aims at. */
  adminShare: number;
  /** Multiplier applied to the rate on throttling. */
  decrease: number;
  /** Rate added per second while callers wait, as a share of the ceiling. */
  recoveryPerSecond: number;
  /** Lowest rate, as a share of the ceiling. */
  floor: number;
  /** At most one cut per this many milliseconds: throttles of calls sent before a cut say nothing new. */
  cutIntervalMs: number;
  /**
   * Instances expected to share the quota (the concurrency cap): each starts at this share of the rate and
   * grows quickly until the service first throttles it, so fewer warm instances still reach the quota.
   */
  instances: number;
}

export const defaultRateTuning: RateTuning = {
  adminShare: 0.2,
  decrease: 0.7,
  recoveryPerSecond: 0.005,
  floor: 0.02,
  cutIntervalMs: 1_000,
  instances: 1,
};

/**
 * One operation's rate: a token bucket (capacity one token, so calls are paced evenly) whose rate
 * grows while callers wait on it and is cut when the service throttles. Times are milliseconds.
 */
export class AdaptiveRate {
  #rate: number;
  #tokens = 1;
  #refilledAt: number;
  #grewAt: number;
  #cutAt = Number.NEGATIVE_INFINITY;
  #throttled = false;
  readonly #floor: number;

  constructor(
    readonly ceiling: number,
    private readonly tuning: Pick<RateTuning, "decrease" | "recoveryPerSecond" | "cutIntervalMs"> & {
      /** Lowest rate, requests per second. */
      floor: number;
      /** First rate, requests per second (default: the ceiling). */
      initial?: number;
    },
    now: number,
  ) {
    if (!(ceiling > 0) || !Number.isFinite(ceiling))
      throw new RangeError(`a rate must be a positive number, got ${ceiling}`);
    this.#floor = Math.min(ceiling, Math.max(tuning.floor, 0.01));
    this.#rate = Math.min(ceiling, Math.max(this.#floor, tuning.initial ?? ceiling));
    this.#refilledAt = now;
    this.#grewAt = now;
  }

  /** Requests per second allowed now. */
  get rate(): number {
    return this.#rate;
  }

  /** Reserves the next token; the milliseconds to wait before using it (0: now). */
  reserve(now: number): number {
    // Callers have waited since the last reservation if it left the bucket in deficit: grow for that time.
    if (this.#tokens < 0) this.#grow(now);
    else this.#grewAt = now;
    this.#tokens = Math.min(1, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#rate);
    this.#refilledAt = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#rate) * 1000;
  }

  /** The service throttled a call: cut the rate (at most once per cut interval). */
  throttled(now: number): void {
    this.#throttled = true;
    if (now - this.#cutAt < this.tuning.cutIntervalMs) return;
    this.#cutAt = now;
    this.#rate = Math.max(this.#floor, this.#rate * this.tuning.decrease);
    this.#grewAt = now;
  }

  /**
   * While callers wait on the bucket: grow toward the ceiling, doubling per second until the first
   * throttle (few instances are warm), then by a small share of the ceiling per second.
   */
  #grow(now: number): void {
    const seconds = Math.max(0, now - this.#grewAt) / 1000;
    this.#grewAt = now;
    const grown = this.#throttled
      ? this.#rate + this.ceiling * this.tuning.recoveryPerSecond * seconds
      : this.#rate * 2 ** seconds;
    this.#rate = Math.min(this.ceiling, grown);
  }
}

/** Calls and throttles seen by a rate controller, per operation. */
export interface RateStats {
  [operation: string]: { calls: number; throttled: number; rate: number };
}

export interface RateControlOptions {
  priority: RatePriority;
  quotas?: IotQuotas;
  clock: ClockPort;
  tuning?: Partial<RateTuning>;
}

/** One caller's rates, an AdaptiveRate per operation, made on first use. */
export class RateController {
  readonly #rates = new Map<string, AdaptiveRate>();
  readonly #stats: RateStats = {};
  readonly #tuning: RateTuning;
  readonly #quotas: IotQuotas;

  constructor(private readonly options: RateControlOptions) {
    this.#tuning = { ...defaultRateTuning, ...options.tuning };
    this.#quotas = options.quotas ?? defaultIotQuotas;
  }

  /** Waits until a call of `operation` may be sent. */
  async acquire(operation: string): Promise<void> {
    const wait = this.#rateOf(operation).reserve(this.#now());
    this.#count(operation).calls += 1;
    if (wait > 0) await this.options.clock.sleep(Math.ceil(wait));
  }

  /** The service throttled a call of `operation`. */
  throttled(operation: string): void {
    this.#rateOf(operation).throttled(this.#now());
    this.#count(operation).throttled += 1;
  }

  /** Calls, throttles and the current rate by operation. */
  stats(): RateStats {
    const copy: RateStats = {};
    for (const [operation, counts] of Object.entries(this.#stats))
      copy[operation] = { ...counts, rate: this.#rates.get(operation)?.rate ?? 0 };
    return copy;
  }

  #rateOf(operation: string): AdaptiveRate {
    let rate = this.#rates.get(operation);
    if (rate === undefined) {
      const quota = quotaOf(this.#quotas, operation);
      const admin = this.options.priority === "admin";
      const ceiling = admin ? quota * this.#tuning.adminShare : quota;
      const floor = admin ? ceiling / 2 : ceiling * this.#tuning.floor;
      const initial = ceiling / Math.max(1, this.#tuning.instances);
      rate = new AdaptiveRate(ceiling, { ...this.#tuning, floor, initial }, this.#now());
      this.#rates.set(operation, rate);
    }
    return rate;
  }

  #count(operation: string) {
    this.#stats[operation] ??= { calls: 0, throttled: 0, rate: 0 };
    return this.#stats[operation];
  }

  #now(): number {
    return this.options.clock.now().getTime();
  }
}

/** IoT port methods whose API operation is not the method's name with a capital first letter. */
const OPERATION_NAMES: Readonly<Record<string, string>> = {
  updateCertificateStatus: "UpdateCertificate",
};

/** The IoT API operation a port method calls. */
export const operationOf = (method: string): string =>
  OPERATION_NAMES[method] ?? method.charAt(0).toUpperCase() + method.slice(1);

/**
 * The same IoT port with every call paced by the account's quota for its operation and backing off
 * when the service throttles (a ThrottlingError). Build one per instance and per priority; retries
 * wrapped around it take a token each.
 */
export function rateControlledIot<T extends object>(
  port: T,
  options: RateControlOptions & { controller?: RateController },
): T {
  const controller = options.controller ?? new RateController(options);
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      const operation = operationOf(property);
      return async (...args: unknown[]) => {
        await controller.acquire(operation);
        try {
          return await value.apply(target, args);
        } catch (error) {
          if (error instanceof ThrottlingError) controller.throttled(operation);
          throw error;
        }
      };
    },
  });
}

/**
 * Reads the account's quota figures: a JSON object of operation names to requests per second, and/or
 * `factor` (a multiplier on every rate), e.g. `{"factor":2}` or `{"UpdateCertificate":20}`. Empty: defaults.
 * Throws a RangeError naming what is wrong.
 */
export function parseIotQuotas(raw: string | undefined): IotQuotas {
  if (raw === undefined || raw.trim() === "") return defaultIotQuotas;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new RangeError('must be a JSON object, e.g. {"factor":2} or {"UpdateCertificate":20}');
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new RangeError('must be a JSON object, e.g. {"factor":2} or {"UpdateCertificate":20}');
  const rates: Record<string, number> = { ...DEFAULT_IOT_QUOTAS };
  let factor = 1;
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 100_000)
      throw new RangeError(
        `${key} must be a positive number of requests per second, got ${JSON.stringify(value)}`,
      );
    if (key === "factor") factor = value;
    else if (/^[A-Z][A-Za-z]{2,63}$/.test(key)) rates[key] = value;
    else throw new RangeError(`${key} is not an IoT operation name (e.g. UpdateCertificate) or "factor"`);
  }
  return { rates, factor };
}
