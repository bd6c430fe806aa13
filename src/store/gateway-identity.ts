// The gateway's identity: a random id kept in the data directory. Everything the gateway creates on the engine and
// the host carries it, so that start-up reconciliation removes only its own orphans, never another gateway's.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ID_RE = /^[0-9a-f]{12}$/;

export function loadOrCreateGatewayId(dataDir: string): string {
  const file = join(dataDir, 'gateway-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (ID_RE.test(id)) return id;
  } catch {
    // first start
  }
  const id = randomBytes(6).toString('hex');
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}
