#!/usr/bin/env bash
# npm run bench: installs what is missing, then runs bench/run.ts against a local stack of its own
# (.local/bench, ports 17233, 18233, 14566 and 14567), so a developer's stack is neither used nor
# disturbed, and stops it afterwards. Arguments go to bench/run.ts: `npm run bench -- --parts quota`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash infra/local/install.sh
# The bench's workers run the compiled worker with its prebuilt workflow bundles.
node bin/build.js
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
export STACK_DIR=.local/bench STACK_TEMPORAL_PORT=17233 STACK_TEMPORAL_UI_PORT=18233 STACK_MOTO_PORT=14566 STACK_REKOGNITION_PORT=14567
node_modules/.bin/tsx infra/local/stack.ts run -- node_modules/.bin/tsx bench/run.ts "$@"
