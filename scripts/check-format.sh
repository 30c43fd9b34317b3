#!/usr/bin/env bash
# Fails when a tracked C file differs from what clang-format (the repo's
# .clang-format) would write; names the files.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run clang-format -i $f)"
        bad=$((bad + 1))
    fi
done < <(git ls-files '*.c' '*.h')
echo "format: $bad file(s) to reformat"
[ "$bad" -eq 0 ]
