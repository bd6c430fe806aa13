// Measuring loops and summaries for the benchmark: sequential latency and fixed-concurrency throughput.
// Every loop is bounded by a count and a deadline and also stops when the run is being interrupted.

export interface LatencyStats {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles (no interpolation) and the mean, in the samples' unit. */
export function latencyStats(samples: readonly number[]): LatencyStats {
  if (samples.length === 0) throw new Error('no samples');
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), mean, min: s[0]!, max: s.at(-1)! };
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface LoopLimits {
  /** Stop after this many calls. */
  count: number;
  /** Stop at this wall-clock budget (ms) even if `count` is not reached. */
  maxMs: number;
  /** Checked before every call: true stops the loop (the run is being interrupted). */
  stopped(): boolean;
}

/** Calls one after the other; returns each call's duration in ms. A failing call fails the loop. */
export async function sequential(call: () => Promise<void>, limits: LoopLimits): Promise<number[]> {
  const samples: number[] = [];
  const deadline = performance.now() + limits.maxMs;
  while (samples.length < limits.count && !limits.stopped()) {
    const t0 = performance.now();
    if (t0 > deadline) break;
    await call();
    samples.push(performance.now() - t0);
  }
  return samples;
}

export interface ThroughputResult {
  inFlight: number;
  completed: number;
  errors: number;
  seconds: number;
  perSecond: number;
  latency: LatencyStats;
  /** Each completed call's duration (ms). */
  samples: number[];
}

/**
 * Keeps `inFlight` calls outstanding for `durationMs` (no new call starts after it, nor after `maxCalls` starts),
 * then waits for the last ones. Rate = completed calls / (time until the last one finished).
 */
export async function throughput(call: () => Promise<void>, inFlight: number, durationMs: number, maxCalls: number, stopped: () => boolean): Promise<ThroughputResult> {
  const samples: number[] = [];
  let started = 0;
  let errors = 0;
  let firstError: unknown;
  const t0 = performance.now();
  const end = t0 + durationMs;
  const worker = async () => {
    while (started < maxCalls && !stopped()) {
      const a = performance.now();
      if (a >= end) return;
      started++;
      try {
        await call();
        samples.push(performance.now() - a);
      } catch (err) {
        errors++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - t0) / 1000;
  if (samples.length === 0) {
    const why = firstError instanceof Error ? firstError.message : String(firstError);
    throw new Error(`no call succeeded at ${inFlight} in flight (${errors} errors; the first: ${why})`, { cause: firstError });
  }
  return { inFlight, completed: samples.length, errors, seconds, perSecond: samples.length / seconds, latency: latencyStats(samples), samples };
}
