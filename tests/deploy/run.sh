#!/bin/sh
# ctest entry for deploy_manifests: installs the pinned npm packages of
# package-lock.json (once, into a cache under the build tree) and runs
# validate.js. Needs node and npm, yamllint and redis-server (Debian
# packages, see scripts/install-deps.sh); kubectl is used when present.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${WEFT_DEPLOY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft-deploy-tests}

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "deploy_manifests: '$tool' not found; install Node.js and npm" \
             "(scripts/install-deps.sh) to validate deploy/" >&2
        exit 1
    fi
done

# Reinstall when the lock file changed since the last install.
stamp="$cache/node_modules/.weft-lock"
if [ ! -d "$cache/node_modules" ] || ! cmp -s "$here/package-lock.json" "$stamp"; then
    rm -rf "$cache/node_modules"
    mkdir -p "$cache"
    cp "$here/package.json" "$here/package-lock.json" "$cache/"
    (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error \
        --cache "$cache/npm-cache") || {
        echo "deploy_manifests: npm ci failed (is the npm registry reachable?)" >&2
        exit 1
    }
    cp "$here/package-lock.json" "$stamp"
fi

NODE_PATH="$cache/node_modules" exec node "$here/validate.js" "$@"
