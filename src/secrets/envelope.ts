// Envelope encryption: a master key (a file, mode 0600) wraps one data key per workspace; data keys encrypt
// secret values. AES-256-GCM throughout, a fresh 96-bit nonce per encryption, the slot bound as associated data.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const NONCE = 12;
const TAG = 16;
export const KEY_BYTES = 32;

export interface MasterKey {
  /** A public fingerprint of the key (not derived reversibly): stored beside what it wrapped. */
  id: string;
  key: Buffer;
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update('mcpx-master-key-id\0').update(key).digest('hex').slice(0, 16);
}

function parseKeyFile(text: string, file: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`the master key in ${file} must be 32 bytes (64 hex digits or base64)`);
  return key;
}

/** Reads the master key; when `create` and the file does not exist, generates one (mode 0600). */
export function loadMasterKey(file: string, create: boolean): MasterKey {
  if (!existsSync(file)) {
    if (!create) throw new Error(`the master key file ${file} does not exist`);
    try {
      writeFileSync(file, `${randomBytes(KEY_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const key = parseKeyFile(readFileSync(file, 'utf8'), file);
  return { id: keyId(key), key };
}

/** Replaces the key file atomically (write beside, then rename), mode 0600. */
export function writeMasterKey(file: string, key: Buffer): void {
  const tmp = `${file}.new-${process.pid}`;
  writeFileSync(tmp, `${key.toString('hex')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Throws when the key is wrong or the box was changed or moved to another slot (aad). */
export function open(key: Buffer, box: Buffer, aad: string): Buffer {
  if (box.length < NONCE + TAG) throw new Error('sealed value is too short');
  const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(0, NONCE));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(box.subarray(box.length - TAG));
  return Buffer.concat([decipher.update(box.subarray(NONCE, box.length - TAG)), decipher.final()]);
}

export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
