// Token buckets: `rate` tokens a second up to `burst`. Pure given the clock it is handed.
export interface BucketSpec {
  rate: number;
  burst: number;
}

export type Take = { ok: true } | { ok: false; retryAfterSeconds: number };

export function createBuckets(spec: BucketSpec, maxKeys = 100_000) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key: string, nowMs: number): Take {
      let b = buckets.get(key);
      if (!b) {
        if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value!);
        b = { tokens: spec.burst, at: nowMs };
        buckets.set(key, b);
      }
      b.tokens = Math.min(spec.burst, b.tokens + ((nowMs - b.at) / 1000) * spec.rate);
      b.at = nowMs;
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / spec.rate)) };
    },
  };
}
