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
  /** The failures by message (the first 200 characters), most frequent first: errors are reported, never dropped. */
  errorKinds: { message: string; count: number }[];
  seconds: number;
  perSecond: number;
  /** Undefined when no call succeeded. */
  latency: LatencyStats | undefined;
  /** Each completed call's duration (ms). */
  samples: number[];
}

/**
 * Keeps `inFlight` calls outstanding for `durationMs` (no new call starts after it, nor after `maxCalls` starts),
 * then waits for the last ones. Rate = completed calls / (time until the last one finished). A failed call is
 * counted (by message) and the loop goes on, so a level at which a path refuses or drops calls shows as errors.
 */
export async function throughput(call: () => Promise<void>, inFlight: number, durationMs: number, maxCalls: number, stopped: () => boolean): Promise<ThroughputResult> {
  const samples: number[] = [];
  let started = 0;
  let errors = 0;
  const kinds = new Map<string, number>();
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
        // Without the JSON-RPC id a message quotes, so that failures of one kind count together.
        const message = (err instanceof Error ? err.message : String(err)).replace(/"id":\s*\d+/g, '"id":…').slice(0, 200);
        kinds.set(message, (kinds.get(message) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const errorKinds = [...kinds].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count);
  return {
    inFlight,
    completed: samples.length,
    errors,
    errorKinds,
    seconds,
    perSecond: samples.length / seconds,
    latency: samples.length > 0 ? latencyStats(samples) : undefined,
    samples,
  };
}

/** Adds `more` into `into` (error counts by message), most frequent first. */
export function mergeErrorKinds(into: { message: string; count: number }[], more: readonly { message: string; count: number }[]): { message: string; count: number }[] {
  const m = new Map(into.map((k) => [k.message, k.count]));
  for (const k of more) m.set(k.message, (m.get(k.message) ?? 0) + k.count);
  return [...m].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count);
}

export interface Spread {
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
}

/** Median and spread of a few repeated runs (nearest rank over n - 1 intervals, as for create-to-ready). */
export function spread(samples: readonly number[]): Spread {
  if (samples.length === 0) throw new Error('no samples');
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))]!;
  return { n: s.length, median: median(s), p10: q(0.1), p90: q(0.9), min: s[0]!, max: s.at(-1)! };
}
