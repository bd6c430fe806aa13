import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadOrCreateSigningKey, signToken } from './issuer.js';
import type { SigningKey } from './issuer.js';
import { effectiveRole, may } from './roles.js';
import { bearerToken, createTokenVerifier } from './verifier.js';

let key: SigningKey;
let verify: ReturnType<typeof createTokenVerifier>;
const dir = mkdtempSync(join(tmpdir(), 'mcpx-auth-'));

beforeAll(async () => {
  key = await loadOrCreateSigningKey(dir);
  verify = createTokenVerifier({ embedded: key });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('token verification', () => {
  it('accepts a token of the embedded issuer and reads the admin scope', async () => {
    const r = await verify(await signToken(key, { sub: 'alice', admin: true, ttlSeconds: 60 }));
    expect(r).toEqual({ ok: true, identity: { sub: 'alice', admin: true } });
    const plain = await verify(await signToken(key, { sub: 'bob', ttlSeconds: 60 }));
    expect(plain).toEqual({ ok: true, identity: { sub: 'bob', admin: false } });
  });

  it('refuses alg none, a foreign key, expiry, a future nbf, wrong iss and aud', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: 'mallory', iss: 'mcpx', aud: 'mcpx', exp: now + 60, scope: 'mcpx:admin' };
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    expect((await verify(none)).ok).toBe(false);

    const foreign = (await generateKeyPair('ES256')).privateKey;
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(foreign);
    expect(await verify(forged)).toMatchObject({ ok: false, reason: 'the token signature is not valid' });

    const hmac = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(32)));
    expect((await verify(hmac)).ok).toBe(false);

    const sign = (c: Record<string, unknown>) => new SignJWT(c).setProtectedHeader({ alg: 'ES256' }).sign(key.privateKey);
    expect(await verify(await sign({ ...claims, exp: now - 60 }))).toMatchObject({ ok: false, reason: 'the token has expired' });
    expect((await verify(await sign({ ...claims, nbf: now + 600 }))).ok).toBe(false);
    expect((await verify(await sign({ ...claims, iss: 'someone' }))).ok).toBe(false);
    expect((await verify(await sign({ ...claims, aud: 'other' }))).ok).toBe(false);
    expect((await verify(await sign({ ...claims, exp: undefined }))).ok).toBe(false);
    expect((await verify('garbage')).ok).toBe(false);
  });

  it('remembers a verified token only until it expires', async () => {
    const strict = createTokenVerifier({ embedded: key, clockToleranceSeconds: 0 });
    const token = await signToken(key, { sub: 'carol', ttlSeconds: 60 });
    expect((await strict(token)).ok).toBe(true);
    expect((await strict(token)).ok).toBe(true);
    vi.useFakeTimers({ now: Date.now() + 61_000, toFake: ['Date'] });
    try {
      expect(await strict(token)).toMatchObject({ ok: false, reason: 'the token has expired' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('takes the token only from a Bearer header', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe('roles', () => {
  it('grants per the contract', () => {
    expect(may('owner', 'manage')).toBe(true);
    expect(may('member', 'use')).toBe(true);
    expect(may('member', 'manage')).toBe(false);
    expect(may('viewer', 'read')).toBe(true);
    expect(may('viewer', 'use')).toBe(false);
    expect(may(undefined, 'read')).toBe(false);
    expect(effectiveRole({ sub: 'root', admin: true }, undefined)).toBe('owner');
    expect(effectiveRole({ sub: 'x', admin: false }, undefined)).toBeUndefined();
  });
});
