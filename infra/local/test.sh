#!/usr/bin/env bash
# npm test: installs what is missing, lints and type-checks, then runs the whole jest suite against
# the local stack, starting the stack if it is not running and stopping afterwards what it started.
# Extra arguments go to jest: `npm test -- test/domain`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash infra/local/install.sh

# The four checks read the same files and write nothing, so they run at once: two cores finish
# them in about two thirds of the time one after the other takes. Each one's output is shown when it fails.
checks_dir="$(mktemp -d)"
trap 'rm -rf "$checks_dir"' EXIT
declare -A checks=(
  [lint]="node_modules/.bin/eslint ."
  [format]="node_modules/.bin/prettier --check --log-level warn ."
  [type-check]="node_modules/.bin/tsc --noEmit"
  [import-cycles]="node_modules/.bin/madge --circular --extensions ts src infra bench"
)
declare -A pids=()
for name in "${!checks[@]}"; do
  ${checks[$name]} >"$checks_dir/$name.log" 2>&1 &
  pids[$name]=$!
done
failed=0
for name in lint format type-check import-cycles; do
  if wait "${pids[$name]}"; then
    echo "test: $name passed"
  else
    echo "test: $name failed:"
    cat "$checks_dir/$name.log"
    failed=1
  fi
done
[[ $failed -eq 0 ]] || exit 1
echo "test: install, lint and type-check took $SECONDS s"
# The SDK's notice that it will need Node 22 from 2027 would repeat once per test file.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
node_modules/.bin/tsx infra/local/stack.ts run -- node_modules/.bin/jest "$@"
