#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, and runs the
# demo: validates and draws the shipped workflows, then runs a workflow end
# to end (an embedded redis-server unless REDIS_URL is set).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
weft=build/cli/weft

echo "== validate the shipped workflows"
"$weft" validate workflows/*.yml

echo "== the feature workflow as a graph (mermaid)"
"$weft" graph workflows/feature.yml --format mermaid

echo "== run a workflow end to end"
"$weft" run workflows/examples/noop-pipeline.yml --task workflows/examples/task.json
