#!/usr/bin/env bash
# npm run demo: the main job on the local stack (see demo.ts). The stack stays up afterwards so
# the run can be looked at in the Web UI; `npm run stack:down` stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

bash infra/local/install.sh
node bin/build.js
node_modules/.bin/tsx infra/local/stack.ts up
set -a
source .local/stack.env
set +a
node bin/reindex.js check
exec node_modules/.bin/tsx infra/local/demo.ts
