#!/usr/bin/env node
// Entry point of the mcpx command; the compiled CLI lives in dist/.
import { main } from '../dist/cli/index.js';

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`mcpx: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1; },
);
