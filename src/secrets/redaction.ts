// Redaction: injected secret values and common credential shapes are replaced by [REDACTED:NAME] before anything
// a server produced reaches a client, a log or the audit trail. Pure: no I/O.

export interface CredentialPattern {
  name: string;
  regex: RegExp;
  /** Text at the ends of a match that is kept around the marker (the match itself must start and end with it). */
  keep?: [string, string];
}

/** The documented pattern set (docs/security-model.md). Each regex is global; they are tried in this order. */
export const CREDENTIAL_PATTERNS: readonly CredentialPattern[] = [
  { name: 'private-key', regex: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g },
  { name: 'aws-access-key-id', regex: /\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b/g },
  { name: 'github-token', regex: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b/g },
  { name: 'gitlab-token', regex: /\bglpat-[A-Za-z0-9_-]{20,}\b/g },
  { name: 'slack-token', regex: /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/g },
  { name: 'google-api-key', regex: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { name: 'stripe-key', regex: /\b(?:sk|rk)_live_[0-9A-Za-z]{24,}\b/g },
  { name: 'jwt', regex: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g },
  // user:password in a URL (https://user:pass@host); the scheme and the host stay readable.
  { name: 'url-credentials', regex: /:\/\/[^\s/?#@:]+:[^\s/?#@]+@/g, keep: ['://', '@'] },
];

export type PatternPolicy = 'redact' | 'block' | 'off';

export interface RedactionHits {
  /** Names of secrets whose values were found. */
  secrets: string[];
  /** Names of credential patterns that matched. */
  patterns: string[];
}

export interface Redactor {
  /** Redacts a string; `hits` collects what was found. */
  text(s: string, hits: RedactionHits): string;
  /** Redacts every string in a JSON value (keys included), copying only what changes. */
  value<T>(v: T, hits: RedactionHits): T;
  readonly policy: PatternPolicy;
  readonly empty: boolean;
}

/** Values shorter than this are not redacted: matching them would mangle ordinary text. */
export const MIN_SECRET_LENGTH = 4;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function createRedactor(secrets: ReadonlyMap<string, string>, policy: PatternPolicy): Redactor {
  const values = [...secrets].filter(([, v]) => v.length >= MIN_SECRET_LENGTH).sort((a, b) => b[1].length - a[1].length);
  const byValue = new Map(values.map(([name, v]) => [v, name]));
  const secretRe = values.length > 0 ? new RegExp(values.map(([, v]) => escape(v)).join('|'), 'g') : undefined;
  const patterns = policy === 'off' ? [] : CREDENTIAL_PATTERNS;
  const empty = secretRe === undefined && patterns.length === 0;

  const text = (s: string, hits: RedactionHits): string => {
    let out = s;
    if (secretRe && out.length >= MIN_SECRET_LENGTH) {
      out = out.replace(secretRe, (m) => {
        const name = byValue.get(m) ?? 'secret';
        if (!hits.secrets.includes(name)) hits.secrets.push(name);
        return `[REDACTED:${name}]`;
      });
    }
    for (const p of patterns) {
      p.regex.lastIndex = 0;
      if (!p.regex.test(out)) continue;
      out = out.replace(p.regex, () => {
        if (!hits.patterns.includes(p.name)) hits.patterns.push(p.name);
        return `${p.keep?.[0] ?? ''}[REDACTED:${p.name}]${p.keep?.[1] ?? ''}`;
      });
    }
    return out;
  };

  const value = <T>(v: T, hits: RedactionHits): T => {
    if (typeof v === 'string') return text(v, hits) as T;
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      v.forEach((item: unknown, i) => {
        const r = value(item, hits);
        if (r !== item) (copy ??= [...(v as unknown[])])[i] = r;
      });
      return (copy ?? v) as T;
    }
    if (v && typeof v === 'object') {
      let copy: Record<string, unknown> | undefined;
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        const rk = text(k, hits);
        const r = value(item, hits);
        if (r !== item || rk !== k) {
          copy ??= { ...(v as Record<string, unknown>) };
          if (rk !== k) delete copy[k];
          copy[rk] = r;
        }
      }
      return (copy ?? v) as T;
    }
    return v;
  };

  return { text, value, policy, empty };
}

export const noHits = (): RedactionHits => ({ secrets: [], patterns: [] });
