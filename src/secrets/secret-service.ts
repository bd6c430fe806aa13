// Secrets: write-only values sealed under a per-workspace data key, which the master key wraps. Key rotation
// re-wraps every data key under a new master key in one transaction; values are never re-encrypted or exposed.
import { existsSync, rmSync } from 'node:fs';
import type { SecretStore } from '../store/index.js';
import { AppError } from '../shared/errors.js';
import { keyId, loadMasterKey, newDataKey, open, seal, writeMasterKey, KEY_BYTES } from './envelope.js';
import type { MasterKey } from './envelope.js';
import { randomBytes } from 'node:crypto';

export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const MAX_SECRET_BYTES = 64 * 1024;

export interface SecretServiceDeps {
  store: SecretStore;
  /** The master key file; created (0600) on first use when `createMasterKey`. */
  masterKeyFile: string;
  createMasterKey: boolean;
}

const wrapAad = (uid: string) => `mcpx/data-key/${uid}`;
const valueAad = (uid: string, name: string) => `mcpx/secret/${uid}/${name}`;

export function createSecretService(deps: SecretServiceDeps) {
  const { store } = deps;
  const nextFile = `${deps.masterKeyFile}.next`;
  let master: MasterKey = loadMasterKey(deps.masterKeyFile, deps.createMasterKey);
  const dataKeys = new Map<string, Buffer>();

  /** Another process may have rotated the key: re-read the file (or the pending `.next` of an interrupted rotation). */
  const masterFor = (id: string): MasterKey => {
    if (master.id === id) return master;
    const reloaded = loadMasterKey(deps.masterKeyFile, false);
    if (reloaded.id === id) return (master = reloaded);
    if (existsSync(nextFile)) {
      const pending = loadMasterKey(nextFile, false);
      if (pending.id === id) return pending;
    }
    throw new Error('no available master key opens this workspace\'s data key (was the master key file replaced?)');
  };

  const dataKey = (uid: string, create: boolean): Buffer | undefined => {
    const cached = dataKeys.get(uid);
    if (cached) return cached;
    const wrapped = store.key(uid);
    if (wrapped) {
      const key = open(masterFor(wrapped.masterKeyId).key, wrapped.wrapped, wrapAad(uid));
      dataKeys.set(uid, key);
      return key;
    }
    if (!create) return undefined;
    // Wrap with the key currently on disk, in case a rotation happened since this process started.
    master = loadMasterKey(deps.masterKeyFile, false);
    const key = newDataKey();
    store.insertKey(uid, master.id, seal(master.key, key, wrapAad(uid)));
    dataKeys.set(uid, key);
    return key;
  };

  return {
    set(uid: string, name: string, value: string): void {
      if (!SECRET_NAME.test(name)) throw new AppError('invalid', 'name: a secret name is letters, digits and "_", not starting with a digit, at most 128');
      if (Buffer.byteLength(value) > MAX_SECRET_BYTES) throw new AppError('invalid', `value: at most ${MAX_SECRET_BYTES} bytes`);
      if (value.length === 0) throw new AppError('invalid', 'value: must not be empty');
      store.put(uid, name, seal(dataKey(uid, true)!, Buffer.from(value, 'utf8'), valueAad(uid, name)));
    },
    list(uid: string): { name: string; updatedAt: string }[] {
      return store.list(uid);
    },
    remove(uid: string, name: string): boolean {
      return store.remove(uid, name);
    },
    /** Plaintext values of the named secrets (missing names are left out). For injection and redaction only. */
    values(uid: string, names?: readonly string[]): Map<string, string> {
      const out = new Map<string, string>();
      const rows = store.all(uid);
      if (rows.length === 0) return out;
      const key = dataKey(uid, false);
      if (!key) return out;
      for (const r of rows) {
        if (names && !names.includes(r.name)) continue;
        out.set(r.name, open(key, r.sealed, valueAad(uid, r.name)).toString('utf8'));
      }
      return out;
    },
    forget(uid: string): void {
      dataKeys.delete(uid);
    },
    get masterKeyId(): string {
      return master.id;
    },
    /**
     * Re-wraps every data key under a new master key. Crash-safe: the new key is written beside the old one first,
     * the database switches in one transaction, then the new file replaces the old.
     */
    rotate(newKey: Buffer = randomBytes(KEY_BYTES)): { keys: number; masterKeyId: string } {
      if (newKey.length !== KEY_BYTES) throw new Error('a master key is 32 bytes');
      const next: MasterKey = { id: keyId(newKey), key: newKey };
      const all = store.keys();
      const rewrapped = all.map((w) => {
        const plain = open(masterFor(w.masterKeyId).key, w.wrapped, wrapAad(w.workspaceUid));
        return { workspaceUid: w.workspaceUid, masterKeyId: next.id, wrapped: seal(next.key, plain, wrapAad(w.workspaceUid)) };
      });
      writeMasterKey(nextFile, next.key);
      store.rewrapAll(rewrapped);
      writeMasterKey(deps.masterKeyFile, next.key);
      rmSync(nextFile, { force: true });
      master = next;
      return { keys: rewrapped.length, masterKeyId: next.id };
    },
  };
}

export type SecretService = ReturnType<typeof createSecretService>;
