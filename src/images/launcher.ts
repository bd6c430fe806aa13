// The launcher every package server starts through: it reads one line of start-up configuration (the secrets the
// server receives) from stdin, applies it, then runs the server's entry in the same process. Secrets thereby never
// appear in the engine's container configuration, in /proc/1/environ or on disk (files go to a tmpfs).
export const LAUNCHER_PATH = '/usr/local/lib/mcpx/launch.mjs';

/** The line the gateway writes first on a package server's stdin. */
export interface LaunchConfig {
  mcpx: 1;
  env: Record<string, string>;
  files: Record<string, string>;
}

export const LAUNCHER_SOURCE = `// mcpx launcher: start-up configuration from the first stdin line, then the server in this process.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [node, , entry, ...args] = process.argv;
const MAX = 1024 * 1024;
let buf = Buffer.alloc(0);

function fail(message) {
  process.stderr.write('mcpx launcher: ' + message + '\\n');
  process.exit(70);
}

// Paused-mode reads through 'readable': once that listener is removed, stdin returns to its initial state, so
// the server's own 'data' listener starts the flow again and receives the unshifted rest first.
function onReadable() {
  let chunk;
  while ((chunk = process.stdin.read()) !== null) {
    buf = Buffer.concat([buf, chunk]);
    const nl = buf.indexOf(10);
    if (nl !== -1) {
      process.stdin.removeListener('readable', onReadable);
      process.stdin.removeListener('end', onEnd);
      const rest = buf.subarray(nl + 1);
      if (rest.length > 0) process.stdin.unshift(rest);
      start(buf.subarray(0, nl));
      return;
    }
    if (buf.length > MAX) fail('the start-up line is too long');
  }
}

function start(line) {
  let config;
  try {
    config = JSON.parse(line.toString('utf8'));
  } catch {
    fail('the start-up line is not JSON');
  }
  if (!config || config.mcpx !== 1) fail('the start-up line is not an mcpx configuration');
  for (const [k, v] of Object.entries(config.env || {})) process.env[k] = String(v);
  for (const [k, v] of Object.entries(config.files || {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail('bad secret file name');
    writeFileSync('/run/secrets/' + k, String(v), { mode: 0o400 });
  }
  process.argv = [node, entry, ...args];
  import(pathToFileURL(entry).href).catch((err) => {
    process.stderr.write(String((err && err.stack) || err) + '\\n');
    process.exit(1);
  });
}

function onEnd() {
  fail('stdin closed before the start-up line');
}

if (!entry) fail('no entry script');
process.stdin.on('readable', onReadable);
process.stdin.on('end', onEnd);
`;
