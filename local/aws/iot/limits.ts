/**
 * API rate quotas (token buckets) and fault injection for the IoT emulator.
 */
import {
  DEFAULT_IOT_QUOTA as DEFAULT_IOT_API_QUOTA,
  DEFAULT_IOT_QUOTAS as IOT_API_QUOTAS,
} from "../../../domain/rate.ts";

/**
 * Requests per second per operation, from the AWS IoT Core service quotas page (the same table the
 * service paces itself by); operations it does not list get a conservative stand-in.
 */
export { DEFAULT_IOT_API_QUOTA, IOT_API_QUOTAS };

export interface QuotaOptions {
  enabled: boolean;
  /** Multiplies every rate (e.g. 0.1 to hit the quotas with small bursts in tests). */
  factor?: number;
}

export interface FaultOptions {
  /** Probability (0..1) that an IoT request is answered with ThrottlingException. */
  throttleRate?: number;
  /** Probability (0..1) that an IoT request is answered with a 500 or 503 error. */
  serverErrorRate?: number;
  /** Delay added to every IoT request. */
  latencyMs?: number;
  /** Up to this much more delay, drawn uniformly per request (latency jitter). */
  latencyJitterMs?: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Per-operation token buckets: capacity and refill are both `rate * factor` per second (min capacity 1). */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly factor: number;

  constructor(
    /** Whether quotas are enforced (a benchmark turns it off while it sets up). */
    public enabled: boolean,
    factor = 1,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(factor > 0) || !Number.isFinite(factor))
      throw new Error(`Quota factor must be a positive number, got ${factor}`);
    this.factor = factor;
  }

  /** Takes one token for `operation`; false when the caller must be throttled. */
  tryAcquire(operation: string): boolean {
    if (!this.enabled) return true;
    const rate = (IOT_API_QUOTAS[operation] ?? DEFAULT_IOT_API_QUOTA) * this.factor;
    const capacity = Math.max(1, rate);
    const now = this.now();
    const bucket = this.buckets.get(operation) ?? { tokens: capacity, updatedAt: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.updatedAt) / 1000) * rate);
    bucket.updatedAt = now;
    this.buckets.set(operation, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

function probability(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (value < 0 || value > 1) throw new Error(`${name} must be between 0 and 1, got ${value}`);
  return value;
}

/** Quota settings from options, else from JITR_LOCAL_QUOTAS / JITR_LOCAL_QUOTA_FACTOR. */
export function resolveQuotas(options: QuotaOptions | undefined): Required<QuotaOptions> {
  if (options)
    return { enabled: options.enabled, factor: options.factor ?? envNumber("JITR_LOCAL_QUOTA_FACTOR") ?? 1 };
  const flag = process.env.JITR_LOCAL_QUOTAS;
  return {
    enabled: flag === "1" || flag === "true",
    factor: envNumber("JITR_LOCAL_QUOTA_FACTOR") ?? 1,
  };
}

/** Fault settings from options, each falling back to its JITR_LOCAL_FAULT_* variable. */
export function resolveFaults(options: FaultOptions | undefined): Required<FaultOptions> {
  const throttleRate = options?.throttleRate ?? envNumber("JITR_LOCAL_FAULT_THROTTLE_RATE");
  const serverErrorRate = options?.serverErrorRate ?? envNumber("JITR_LOCAL_FAULT_5XX_RATE");
  const latencyMs = options?.latencyMs ?? envNumber("JITR_LOCAL_FAULT_LATENCY_MS") ?? 0;
  const latencyJitterMs = options?.latencyJitterMs ?? envNumber("JITR_LOCAL_FAULT_LATENCY_JITTER_MS") ?? 0;
  if (latencyMs < 0) throw new Error(`latencyMs must not be negative, got ${latencyMs}`);
  if (latencyJitterMs < 0) throw new Error(`latencyJitterMs must not be negative, got ${latencyJitterMs}`);
  return {
    throttleRate: probability("throttleRate", throttleRate),
    serverErrorRate: probability("serverErrorRate", serverErrorRate),
    latencyMs,
    latencyJitterMs,
  };
}
