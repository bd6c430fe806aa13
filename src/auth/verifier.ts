// Token verification: the embedded issuer and, when configured, an external identity provider (JWKS).
// Algorithms are allowlisted per issuer (asymmetric only), so `none` and HMAC/RSA confusion cannot pass.
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { ADMIN_SCOPE, EMBEDDED_ALG, EMBEDDED_AUDIENCE, EMBEDDED_ISSUER } from './issuer.js';
import type { SigningKey } from './issuer.js';

export interface Identity {
  sub: string;
  admin: boolean;
}

export type VerifyResult = { ok: true; identity: Identity } | { ok: false; reason: string };

export const EXTERNAL_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];

export interface VerifierOptions {
  embedded: Pick<SigningKey, 'publicKey'>;
  external?: { jwksUrl: string; issuer: string; audience: string };
  clockToleranceSeconds?: number;
}

function toIdentity(payload: JWTPayload): VerifyResult {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) return { ok: false, reason: 'the token has no subject' };
  const scope = typeof payload.scope === 'string' ? payload.scope.split(' ') : Array.isArray(payload.scp) ? (payload.scp as unknown[]) : [];
  return { ok: true, identity: { sub: payload.sub, admin: scope.includes(ADMIN_SCOPE) } };
}

/** Verified tokens are remembered until they expire: a signature check costs far more than the request it guards. */
const CACHE_MAX = 10_000;

export function createTokenVerifier(opts: VerifierOptions) {
  const jwks = opts.external ? createRemoteJWKSet(new URL(opts.external.jwksUrl)) : undefined;
  const clockTolerance = opts.clockToleranceSeconds ?? 5;
  const cache = new Map<string, { identity: Identity; notBefore: number; expires: number }>();
  const remember = (token: string, payload: JWTPayload, identity: Identity) => {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(token, { identity, notBefore: ((payload.nbf ?? 0) - clockTolerance) * 1000, expires: ((payload.exp ?? 0) + clockTolerance) * 1000 });
  };
  return async function verify(token: string): Promise<VerifyResult> {
    const hit = cache.get(token);
    if (hit) {
      const now = Date.now();
      if (now >= hit.notBefore && now < hit.expires) return { ok: true, identity: hit.identity };
      cache.delete(token);
    }
    const r = await verifyUncached(token);
    return r;
  };

  async function verifyUncached(token: string): Promise<VerifyResult> {
    try {
      const header = decodeProtectedHeader(token);
      if (typeof header.alg !== 'string' || header.alg === 'none') return { ok: false, reason: 'the token is not signed' };
      // The embedded issuer signs only with ES256; anything it did not sign goes to the external provider.
      const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
      if (claims.iss === EMBEDDED_ISSUER || !jwks) {
        const { payload } = await jwtVerify(token, opts.embedded.publicKey, {
          algorithms: [EMBEDDED_ALG],
          issuer: EMBEDDED_ISSUER,
          audience: EMBEDDED_AUDIENCE,
          requiredClaims: ['exp', 'sub'],
          clockTolerance,
        });
        const r = toIdentity(payload);
        if (r.ok) remember(token, payload, r.identity);
        return r;
      }
      const { payload } = await jwtVerify(token, jwks, {
        algorithms: EXTERNAL_ALGS,
        issuer: opts.external!.issuer,
        audience: opts.external!.audience,
        requiredClaims: ['exp', 'sub'],
        clockTolerance,
      });
      const r = toIdentity(payload);
      if (r.ok) remember(token, payload, r.identity);
      return r;
    } catch (err) {
      const code = (err as { code?: string }).code;
      const reason =
        code === 'ERR_JWT_EXPIRED'
          ? 'the token has expired'
          : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
            ? `the token's ${(err as { claim?: string }).claim ?? 'claims'} claim is not acceptable`
            : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
              ? 'the token signature is not valid'
              : code === 'ERR_JOSE_ALG_NOT_ALLOWED'
                ? 'the token algorithm is not allowed'
                : 'the token is not valid';
      return { ok: false, reason };
    }
  }
}

export type TokenVerifier = ReturnType<typeof createTokenVerifier>;

/** The bearer token from the Authorization header, and only from there. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  return m?.[1];
}
