// The embedded token issuer: an ES256 key pair generated once in the data directory, and token signing.
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';

export const EMBEDDED_ISSUER = 'mcpx';
export const EMBEDDED_AUDIENCE = 'mcpx';
export const EMBEDDED_ALG = 'ES256';
export const ADMIN_SCOPE = 'mcpx:admin';
const KEY_FILE = 'signing-key.json';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** Loads the issuer's key from DIR, creating it (mode 0600) on first use. */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const file = join(dataDir, KEY_FILE);
  if (!existsSync(file)) {
    const { privateKey } = await generateKeyPair(EMBEDDED_ALG, { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: EMBEDDED_ALG };
    // 'wx' refuses to overwrite a key another process created at the same moment.
    try {
      writeFileSync(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(file, 0o600);
  const jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK & { kid: string };
  const publicJwk: JWK = { ...jwk };
  delete publicJwk.d;
  return {
    kid: jwk.kid,
    privateKey: (await importJWK(jwk, EMBEDDED_ALG)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, EMBEDDED_ALG)) as CryptoKey,
  };
}

/** Parses durations like 30s, 15m, 1h, 7d. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const mult = { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n * mult : undefined;
}

export async function signToken(key: SigningKey, opts: { sub: string; admin?: boolean; ttlSeconds: number; scope?: string[] }): Promise<string> {
  const scopes = [...(opts.scope ?? []), ...(opts.admin ? [ADMIN_SCOPE] : [])];
  return new SignJWT({ ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}) })
    .setProtectedHeader({ alg: EMBEDDED_ALG, kid: key.kid, typ: 'JWT' })
    .setSubject(opts.sub)
    .setIssuer(EMBEDDED_ISSUER)
    .setAudience(EMBEDDED_AUDIENCE)
    .setIssuedAt()
    .setNotBefore('0s')
    .setJti(randomUUID())
    .setExpirationTime(`${opts.ttlSeconds}s`)
    .sign(key.privateKey);
}
