#!/usr/bin/env bash
# npm run demo: the main job on the local stack. The stack stays up afterwards so its Web UI can be
# looked at; `npm run stack:down` stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash infra/local/install.sh
node_modules/.bin/tsx infra/local/stack.ts up
set -a
source .local/stack.env
set +a
node bin/reindex.js check
echo "demo: the migration itself is not built yet (the reindex workflow arrives with the core issue);"
echo "demo: the local stack above is up and checked. Web UI: $TEMPORAL_UI_URL; stop it with: npm run stack:down"
exit 1
