#!/usr/bin/env bash
# The whole suite: build, typecheck, lint, unit tests, then integration tests against the real Docker Engine.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s build
npm run -s typecheck
npm run -s lint
npx vitest run "$@"
