import { describe, expect, it } from 'vitest';
import { validateSpec } from '../config/spec.js';
import type { WorkspaceSpec } from '../config/spec.js';
import { openDatabase } from './database.js';
import { createWorkspaceStore } from './workspace-store.js';

function spec(members: Record<string, string>): WorkspaceSpec {
  const r = validateSpec({ name: 'roles', servers: [{ name: 'mem', package: '@modelcontextprotocol/server-memory' }], members });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.spec;
}

describe('workspace store: roles', () => {
  it('answers every role change at once although roles are cached', () => {
    const store = createWorkspaceStore(openDatabase(':memory:'));
    const rec = store.create(spec({ bob: 'viewer' }), 'alice');
    // Read each role twice so that the second answer comes from the cache.
    for (let i = 0; i < 2; i++) {
      expect(store.roleOf(rec.uid, 'alice')).toBe('owner');
      expect(store.roleOf(rec.uid, 'bob')).toBe('viewer');
      expect(store.roleOf(rec.uid, 'carol')).toBeUndefined();
    }
    store.setMember(rec.uid, 'carol', 'member');
    expect(store.roleOf(rec.uid, 'carol')).toBe('member');
    store.removeMember(rec.uid, 'bob');
    expect(store.roleOf(rec.uid, 'bob')).toBeUndefined();
    store.replaceSpec(rec.uid, spec({ bob: 'member' }));
    expect(store.roleOf(rec.uid, 'bob')).toBe('member');
    expect(store.roleOf(rec.uid, 'carol')).toBeUndefined();
    store.remove(rec.uid);
    expect(store.roleOf(rec.uid, 'alice')).toBeUndefined();
  });

  it('keeps answering correctly past the per-workspace cache bound', () => {
    const store = createWorkspaceStore(openDatabase(':memory:'));
    const rec = store.create(spec({}), 'alice');
    for (let i = 0; i < 5000; i++) expect(store.roleOf(rec.uid, `stranger-${i}`)).toBeUndefined();
    expect(store.roleOf(rec.uid, 'alice')).toBe('owner');
  });
});

describe('workspace store: the converged generation', () => {
  it('is unset until a converge records it, and stays behind a replaced spec until the next one', () => {
    const store = createWorkspaceStore(openDatabase(':memory:'));
    const rec = store.create(spec({}), 'alice');
    expect(rec.convergedGeneration).toBeUndefined();
    store.setConverged(rec.uid, rec.generation);
    expect(store.getByUid(rec.uid)).toMatchObject({ generation: 1, convergedGeneration: 1 });
    store.replaceSpec(rec.uid, spec({}));
    expect(store.getByUid(rec.uid)).toMatchObject({ generation: 2, convergedGeneration: 1 });
  });
});
