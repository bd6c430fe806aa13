// Request sanitising: structural limits on a JSON value and the forbidden-argument-name walk. Pure.
export interface Limits {
  maxStringLength: number;
  maxDepth: number;
  maxArrayLength: number;
  /** Most object keys in any one object. */
  maxKeys: number;
}

export const DEFAULT_LIMITS: Limits = { maxStringLength: 1_000_000, maxDepth: 32, maxArrayLength: 10_000, maxKeys: 1_000 };
export const DEFAULT_FORBIDDEN_ARGS = ['exec', 'eval', 'import'] as const;

export type Check = { ok: true } | { ok: false; reason: string; path: string };

const OK: Check = { ok: true };

const fmt = (path: readonly (string | number)[]) =>
  path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '') || '(root)';

/** Walks a JSON value once (iteratively: a deep value cannot blow the stack) and reports the first violation. */
export function checkLimits(value: unknown, limits: Limits): Check {
  const stack: { v: unknown; depth: number; path: (string | number)[] }[] = [{ v: value, depth: 0, path: [] }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > limits.maxStringLength) return { ok: false, reason: `a string is longer than ${limits.maxStringLength} characters`, path: fmt(path) };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limits.maxDepth) return { ok: false, reason: `nesting is deeper than ${limits.maxDepth}`, path: fmt(path) };
    if (Array.isArray(v)) {
      if (v.length > limits.maxArrayLength) return { ok: false, reason: `an array has more than ${limits.maxArrayLength} items`, path: fmt(path) };
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], depth: depth + 1, path: [...path, i] });
      continue;
    }
    const keys = Object.keys(v);
    if (keys.length > limits.maxKeys) return { ok: false, reason: `an object has more than ${limits.maxKeys} keys`, path: fmt(path) };
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      if (k.length > limits.maxStringLength) return { ok: false, reason: `a key is longer than ${limits.maxStringLength} characters`, path: fmt(path) };
      stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1, path: [...path, k] });
    }
  }
  return OK;
}

/** The first object key, at any depth, that is on the forbidden list (compared case-insensitively). */
export function findForbiddenName(value: unknown, forbidden: readonly string[]): Check {
  if (forbidden.length === 0) return OK;
  const names = new Set(forbidden.map((n) => n.toLowerCase()));
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i] });
      continue;
    }
    for (const [k, child] of Object.entries(v)) {
      if (names.has(k.toLowerCase())) return { ok: false, reason: `the argument name "${k}" is forbidden`, path: fmt([...path, k]) };
      stack.push({ v: child, path: [...path, k] });
    }
  }
  return OK;
}
