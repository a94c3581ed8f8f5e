#!/usr/bin/env bash
# npm test: installs what is missing, lints and type-checks, then runs the whole jest suite against
# the local stack, starting the stack if it is not running and stopping afterwards what it started.
# Extra arguments go to jest: `npm test -- test/domain`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash infra/local/install.sh
echo "test: lint"
node_modules/.bin/eslint .
echo "test: format"
node_modules/.bin/prettier --check --log-level warn .
echo "test: type-check"
node_modules/.bin/tsc --noEmit
echo "test: no import cycle"
node_modules/.bin/madge --circular --extensions ts src infra bench
echo "test: install, lint and type-check took $SECONDS s"
# The SDK's notice that it will need Node 22 from 2027 would repeat once per test file.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
node_modules/.bin/tsx infra/local/stack.ts run -- node_modules/.bin/jest "$@"
