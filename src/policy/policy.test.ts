import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mayAccess, mayCall } from './access-policy.js';
import { globToRegExp, matchesAny } from './glob.js';
import { createBuckets } from './rate-limit.js';
import { checkLimits, DEFAULT_LIMITS, findForbiddenName } from './sanitize.js';
import { createSchemaValidator } from './schema-validator.js';

const name = fc.string({ minLength: 1, maxLength: 24 });
const literal = name.filter((s) => !s.includes('*') && !s.includes('?'));

describe('globs', () => {
  it('a literal glob matches exactly itself, whatever characters it holds', () => {
    fc.assert(fc.property(literal, name, (g, n) => globToRegExp(g).test(n) === (g === n)));
  });
  it('* matches everything; prefix* matches exactly the names with that prefix', () => {
    fc.assert(fc.property(name, (n) => globToRegExp('*').test(n)));
    fc.assert(fc.property(literal, name, (p, n) => globToRegExp(`${p}*`).test(n) === n.startsWith(p)));
  });
  it('? matches one character', () => {
    expect(matchesAny(['ech?'], 'echo')).toBe(true);
    expect(matchesAny(['ech?'], 'ech')).toBe(false);
  });
});

describe('allow/deny precedence', () => {
  const globs = fc.array(fc.oneof(literal, literal.map((s) => `${s}*`), fc.constant('*')), { maxLength: 4 });
  it('deny always wins; no allow list means allowed unless denied; an allow list must match', () => {
    fc.assert(
      fc.property(fc.option(globs, { nil: undefined }), globs, name, (allow, deny, n) => {
        const d = mayAccess({ tools: { ...(allow ? { allow } : {}), deny } }, 'tools', 'member', n);
        const expected = !matchesAny(deny, n) && (allow === undefined || matchesAny(allow, n));
        return d.allow === expected;
      }),
    );
  });
  it('role rules add denials and replace the allow list for that role only', () => {
    fc.assert(
      fc.property(globs, globs, name, (roleAllow, roleDeny, n) => {
        const policy = { tools: { deny: ['blocked'], roles: { member: { allow: roleAllow, deny: roleDeny } } } };
        const member = mayAccess(policy, 'tools', 'member', n).allow;
        const owner = mayAccess(policy, 'tools', 'owner', n).allow;
        return member === (n !== 'blocked' && !matchesAny(roleDeny, n) && matchesAny(roleAllow, n)) && owner === (n !== 'blocked');
      }),
    );
  });
  it('viewers never call, whatever the rules', () => {
    fc.assert(fc.property(name, (n) => !mayCall({}, 'viewer', n).allow));
    expect(mayCall({}, 'member', 'x').allow).toBe(true);
  });
});

/** A JSON value nested exactly `depth` levels of objects/arrays deep. */
const nested = (depth: number, leaf: unknown): unknown => (depth === 0 ? leaf : depth % 2 ? { k: nested(depth - 1, leaf) } : [nested(depth - 1, leaf)]);

describe('limits', () => {
  const limits = { ...DEFAULT_LIMITS, maxDepth: 8, maxArrayLength: 5, maxStringLength: 10 };
  it('accepts values within every limit and refuses one level too deep', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 8 }), (d) => checkLimits(nested(d, 'x'), limits).ok));
    fc.assert(fc.property(fc.integer({ min: 9, max: 200 }), (d) => !checkLimits(nested(d, 'x'), limits).ok));
  });
  it('refuses long strings and arrays, naming where', () => {
    fc.assert(fc.property(fc.string({ minLength: 11, maxLength: 40 }), (s) => !checkLimits({ a: [s] }, limits).ok));
    fc.assert(fc.property(fc.array(fc.integer(), { minLength: 6, maxLength: 30 }), (a) => !checkLimits({ a }, limits).ok));
    expect(checkLimits({ a: { b: ['x'.repeat(11)] } }, limits)).toMatchObject({ ok: false, path: 'a.b[0]' });
  });
  it('handles a value far deeper than the stack would allow recursively', () => {
    let v: unknown = 'x';
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(checkLimits(v, DEFAULT_LIMITS).ok).toBe(false);
  });
});

describe('forbidden argument names', () => {
  const key = fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !['exec', 'eval', 'import'].includes(k.toLowerCase()));
  const clean = fc.jsonValue().filter((v) => JSON.stringify(v) === JSON.stringify(v)).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
  it('finds a forbidden key at any depth, in any case', () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 6 }), fc.constantFrom('exec', 'EVAL', 'Import'), (path, bad) => {
        let v: Record<string, unknown> = { [bad]: 1 };
        for (const p of [...path].reverse()) v = { [p]: [v] };
        const r = findForbiddenName(v, ['exec', 'eval', 'import']);
        return !r.ok && r.path.endsWith(bad);
      }),
    );
  });
  it('passes values without them', () => {
    fc.assert(
      fc.property(clean, (v) => {
        const hasBad = /"(exec|eval|import)":/i.test(JSON.stringify(v));
        return findForbiddenName(v, ['exec', 'eval', 'import']).ok === !hasBad;
      }),
    );
  });
});

describe('schema validation', () => {
  const v = createSchemaValidator();
  it('validates draft-07 and 2020-12 schemas, and refuses what cannot compile', () => {
    const schema = { type: 'object', properties: { message: { type: 'string' } }, required: ['message'], $schema: 'http://json-schema.org/draft-07/schema#' };
    expect(v.validate(schema, { message: 'hi' })).toEqual({ ok: true });
    expect(v.validate(schema, { message: 3 })).toMatchObject({ ok: false, reason: 'arguments.message must be string' });
    expect(v.validate(schema, {})).toMatchObject({ ok: false });
    const s2020 = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', prefixItems: [], properties: { n: { type: 'integer' } } };
    expect(v.validate(s2020, { n: 1 })).toEqual({ ok: true });
    expect(v.validate(s2020, { n: 1.5 }).ok).toBe(false);
    expect(v.validate({ type: 'no-such-type' }, {}).ok).toBe(false);
  });
});

describe('token buckets', () => {
  it('allow exactly the burst at once, then refill at the rate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 20 }), (burst, rate) => {
        const b = createBuckets({ rate, burst });
        let ok = 0;
        for (let i = 0; i < burst * 2; i++) if (b.take('k', 0).ok) ok++;
        const later = b.take('k', 1000).ok;
        const other = b.take('other', 0).ok;
        return ok === burst && later && other;
      }),
    );
  });
});
