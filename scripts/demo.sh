#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, and runs the
# demo end to end on a real temporary git repository.
#
#   1. validates the shipped workflows and draws one as a graph;
#   2. makes a small Python project with its own tests, on `main`, with a
#      bare `origin` remote;
#   3. submits a feature task through the coordinator (workflows/routes.yml
#      sends type feature to feature.yml): the planner writes PLAN.md, the
#      evaluator approves it, the engineers change code, the run's branch
#      is committed, QA runs the project's tests and reports pass or fail,
#      code and security review read the diff in parallel, and the branch
#      is merged into main and pushed;
#   4. submits a hotfix task, which the coordinator sends to hotfix.yml;
#   5. shows the git history, the plan and what each persona was asked and
#      answered.
#
# Without REDIS_URL, `weft run` starts a private redis-server for each run.
# Everything the demo makes lives in one temp dir, printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
weft=$PWD/build/cli/weft

echo "== validate the shipped workflows"
"$weft" validate workflows/*.yml

echo
echo "== the feature workflow as a graph (mermaid)"
"$weft" graph workflows/feature.yml --format mermaid | head -20
echo "   ... (weft graph workflows/feature.yml --format dot | dot -Tsvg)"

demo=$(mktemp -d "${TMPDIR:-/tmp}/weft-demo-XXXXXX")
repo=$demo/repo
export WEFT_TRANSCRIPTS=$demo/transcripts

echo
echo "== a project to work on: $repo (origin: $demo/origin.git)"
git init -q --bare -b main "$demo/origin.git"
git init -q -b main "$repo"
cat >"$repo/app.py" <<'EOF'
def hello():
    return "hello"
EOF
cat >"$repo/test_app.py" <<'EOF'
import unittest

import app


class AppTest(unittest.TestCase):
    def test_hello(self):
        self.assertEqual(app.hello(), "hello")
EOF
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@localhost \
    commit -q -m "initial project"
git -C "$repo" remote add origin "$demo/origin.git"
git -C "$repo" push -q origin main

cat >"$demo/feature.json" <<EOF
{"type": "feature", "project": "demo", "slug": "greeting",
 "title": "Add greeting", "repoRoot": "$repo", "baseBranch": "main"}
EOF
cat >"$demo/hotfix.json" <<EOF
{"type": "hotfix", "project": "demo", "slug": "fix-greeting",
 "title": "Fix greeting", "description": "keep hello() stable",
 "repoRoot": "$repo", "baseBranch": "main"}
EOF

echo
echo "== a feature task, routed by the coordinator"
"$weft" run --task "$demo/feature.json"

echo
echo "== a hotfix task, routed by the coordinator"
"$weft" run --task "$demo/hotfix.json"

echo
echo "== the history of main (also pushed to origin)"
git -C "$repo" log --oneline --graph main
echo
echo "== PLAN.md, written by the implementation planner"
sed -n '1,12p' "$repo/PLAN.md"
echo
echo "== what each persona was asked and answered"
find "$WEFT_TRANSCRIPTS" -name '*.response.json' | sort | while read -r f; do
    printf '%s: ' "${f#"$WEFT_TRANSCRIPTS"/}"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("status"), "-", d.get("message", ""))' "$f"
done
echo
echo "Everything is in $demo (requests and responses in $WEFT_TRANSCRIPTS)."
