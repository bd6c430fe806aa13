import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSecretStore, createWorkspaceStore, openDatabase } from '../store/index.js';
import { loadMasterKey, open, seal } from './envelope.js';
import { createRedactor, noHits } from './redaction.js';
import { createSecretService } from './secret-service.js';

const dir = mkdtempSync(join(tmpdir(), 'mcpx-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('envelope', () => {
  it('opens what it sealed, and nothing that was changed or moved', () => {
    const key = Buffer.alloc(32, 7);
    const box = seal(key, Buffer.from('hunter2'), 'slot-a');
    expect(open(key, box, 'slot-a').toString()).toBe('hunter2');
    expect(() => open(key, box, 'slot-b')).toThrow();
    expect(() => open(Buffer.alloc(32, 8), box, 'slot-a')).toThrow();
    const tampered = Buffer.from(box);
    tampered[14] = tampered[14]! ^ 1;
    expect(() => open(key, tampered, 'slot-a')).toThrow();
    expect(seal(key, Buffer.from('x'), 'a').equals(seal(key, Buffer.from('x'), 'a'))).toBe(false);
  });
});

describe('secret service', () => {
  const db = openDatabase(join(dir, 'mcpx.db'));
  const workspaces = createWorkspaceStore(db);
  const ws = workspaces.create({ name: 'demo', servers: [], resources: {}, network: 'none', isolation: 'standard', members: {}, tools: {}, redaction: { patterns: 'redact' } } as never, 'alice');
  const keyFile = join(dir, 'master.key');
  const service = createSecretService({ store: createSecretStore(db), masterKeyFile: keyFile, createMasterKey: true });

  it('stores values sealed and gives them back', () => {
    service.set(ws.uid, 'API_TOKEN', 'tok-abc-123-secret');
    service.set(ws.uid, 'OTHER', 'other-value-456');
    expect(service.values(ws.uid)).toEqual(new Map([['API_TOKEN', 'tok-abc-123-secret'], ['OTHER', 'other-value-456']]));
    expect(service.values(ws.uid, ['OTHER'])).toEqual(new Map([['OTHER', 'other-value-456']]));
    expect(service.list(ws.uid).map((s) => s.name)).toEqual(['API_TOKEN', 'OTHER']);
    expect(readFileSync(keyFile, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(() => service.set(ws.uid, '1BAD', 'x')).toThrow(/name/);
  });

  it('rotates the master key: every value still opens, the old key opens nothing', () => {
    const old = loadMasterKey(keyFile, false);
    const r = service.rotate();
    expect(r.keys).toBe(1);
    expect(r.masterKeyId).not.toBe(old.id);
    // A fresh service (a restarted gateway) reads the new key from the file.
    const fresh = createSecretService({ store: createSecretStore(db), masterKeyFile: keyFile, createMasterKey: false });
    expect(fresh.values(ws.uid).get('API_TOKEN')).toBe('tok-abc-123-secret');
    const wrapped = createSecretStore(db).key(ws.uid)!;
    expect(wrapped.masterKeyId).toBe(r.masterKeyId);
    expect(() => open(old.key, wrapped.wrapped, `mcpx/data-key/${ws.uid}`)).toThrow();
  });
});

describe('redaction', () => {
  const secrets = new Map([
    ['API_TOKEN', 'tok-abc-123-secret'],
    ['SHORT', 'ab'],
  ]);

  it('replaces secret values and credential shapes everywhere in a value, copying only what changes', () => {
    const r = createRedactor(secrets, 'redact');
    const hits = noHits();
    const untouched = { a: ['nothing here'] };
    const input = { content: [{ type: 'text', text: 'token=tok-abc-123-secret key=AKIAIOSFODNN7EXAMPLE ab' }], untouched };
    const out = r.value(input, hits);
    expect(out.content[0]!.text).toBe('token=[REDACTED:API_TOKEN] key=[REDACTED:aws-access-key-id] ab');
    expect(out.untouched).toBe(untouched);
    expect(input.content[0]!.text).toContain('tok-abc-123-secret');
    expect(hits).toEqual({ secrets: ['API_TOKEN'], patterns: ['aws-access-key-id'] });
  });

  it('knows the documented credential shapes', () => {
    const r = createRedactor(new Map(), 'redact');
    const samples: [string, string, string?][] = [
      ['github-token', `ghp_${'a'.repeat(36)}`],
      ['slack-token', 'xoxb-123456789012-abcdefghij'],
      ['private-key', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----'],
      ['jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
      ['google-api-key', `AIza${'B'.repeat(35)}`],
      ['url-credentials', 'https://deploy:s3cr3t-Pa55@registry.example/x', 'https://[REDACTED:url-credentials]@registry.example/x'],
    ];
    for (const [name, sample, redacted] of samples) {
      const hits = noHits();
      expect(r.text(`x ${sample} y`, hits)).toBe(`x ${redacted ?? `[REDACTED:${name}]`} y`);
      expect(hits.patterns).toEqual([name]);
    }
  });

  it('leaves patterns alone when off, but never secret values', () => {
    const r = createRedactor(secrets, 'off');
    const hits = noHits();
    expect(r.text('AKIAIOSFODNN7EXAMPLE tok-abc-123-secret', hits)).toBe('AKIAIOSFODNN7EXAMPLE [REDACTED:API_TOKEN]');
    expect(createRedactor(new Map(), 'off').empty).toBe(true);
  });
});

describe('url-credentials pattern', () => {
  it('leaves URLs without a password alone', () => {
    const r = createRedactor(new Map(), 'redact');
    for (const s of ['https://registry.example/x', 'mailto://user@example.com', 'see http://host:8080/path', 'a://b:c d@e']) {
      const hits = noHits();
      expect(r.text(s, hits)).toBe(s);
      expect(hits.patterns).toEqual([]);
    }
  });
});
