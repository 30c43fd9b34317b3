#!/bin/sh
# Writes weft's Kubernetes Secrets as a kustomization: the HMAC signing key,
# the Redis ACL file, and one REDIS_URL per Redis user, all consistent.
#
#   deploy/k8s/make-secrets.sh DIR          random keys and passwords
#   deploy/k8s/make-secrets.sh --template DIR
#                                           CHANGE-ME placeholders (this is
#                                           how deploy/k8s/secrets is made)
#
# Then: kubectl apply -n <namespace> -k DIR   (and keep DIR out of git).
#
# The ACL file stores SHA-256 hashes of the passwords, never the passwords.
# Environment: WEFT_REDIS_ADDR (default weft-redis:6379), the address the
# REDIS_URLs name.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
template=no
if [ "${1:-}" = "--template" ]; then
    template=yes
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--template] DIR" >&2
    exit 2
fi
out=$1
addr=${WEFT_REDIS_ADDR:-weft-redis:6379}

if [ "$template" = no ]; then
    for f in hmac.key users.acl scheduler.env worker.env keda.env \
             operator.env admin.env; do
        if [ -e "$out/$f" ]; then
            echo "$0: $out/$f exists; refusing to overwrite secrets" >&2
            exit 1
        fi
    done
fi
(umask 077 && mkdir -p "$out")

# 24 random bytes as hex: URL-safe, so it can sit in a REDIS_URL as is.
random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}
sha256() {
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

users="SCHEDULER WORKER KEDA OPERATOR ADMIN"
sed_args=""
for u in $users; do
    if [ "$template" = yes ]; then
        pw="CHANGE-ME-$(echo "$u" | tr 'A-Z' 'a-z')"
        rule=">$pw"
    else
        pw=$(random_hex 24)
        rule="#$(sha256 "$pw")"
    fi
    eval "pw_$u=\$pw"
    sed_args="$sed_args -e s/>@${u}_PASSWORD@/$rule/"
done

umask 077
# shellcheck disable=SC2086
grep -v -e '^#' -e '^[[:space:]]*$' "$here/secrets/users.acl.in" |
    sed $sed_args >"$out/users.acl"
if grep -q '@[A-Z_]*@' "$out/users.acl"; then
    echo "$0: users.acl.in has a placeholder this script does not know" >&2
    exit 1
fi

if [ "$template" = yes ]; then
    printf '%s\n' "CHANGE-ME-not-a-secret-hmac-key-run-make-secrets.sh" \
        >"$out/hmac.key"
else
    random_hex 32 >"$out/hmac.key"
    echo >>"$out/hmac.key"
fi

# shellcheck disable=SC2154
{
    echo "REDIS_URL=redis://weft-scheduler:$pw_SCHEDULER@$addr"
} >"$out/scheduler.env"
echo "REDIS_URL=redis://weft-worker:$pw_WORKER@$addr" >"$out/worker.env"
printf 'username=weft-keda\npassword=%s\n' "$pw_KEDA" >"$out/keda.env"
# The toolbox: REDIS_URL for the weft CLI, REDISCLI_AUTH for redis-cli.
printf 'REDIS_URL=redis://weft-operator:%s@%s\nREDISCLI_AUTH=%s\n' \
    "$pw_OPERATOR" "$addr" "$pw_OPERATOR" >"$out/operator.env"
printf 'REDIS_URL=redis://weft-admin:%s@%s\nREDISCLI_AUTH=%s\n' \
    "$pw_ADMIN" "$addr" "$pw_ADMIN" >"$out/admin.env"

cat >"$out/kustomization.yaml" <<'EOF'
# weft's Secrets, written by deploy/k8s/make-secrets.sh. Fixed names (no
# hash suffix): the workloads refer to them by these names, and secret
# managers (External Secrets, Sealed Secrets, Vault) can provide the same
# names instead. After changing one, restart the pods that read it
# (deploy/README.md, "Rotate secrets").
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

generatorOptions:
  disableNameSuffixHash: true
  labels:
    app.kubernetes.io/name: weft
    app.kubernetes.io/part-of: weft

secretGenerator:
  # HMAC-SHA256 key signing every job (WEFT_HMAC_KEY_FILE); schedulers and
  # workers must share it. Never stored in Redis.
  - name: weft-hmac
    files:
      - hmac.key
  # Redis' ACL file (--aclfile): one line per user, hashed passwords.
  - name: weft-redis-acl
    files:
      - users.acl
  - name: weft-scheduler-redis
    envs:
      - scheduler.env
  - name: weft-worker-redis
    envs:
      - worker.env
  # Read by KEDA's TriggerAuthentication (optional/keda).
  - name: weft-keda-redis
    envs:
      - keda.env
  # For people: the toolbox (optional/toolbox) mounts it.
  - name: weft-operator-redis
    envs:
      - operator.env
  # Break-glass Redis administration; mounted by nothing.
  - name: weft-admin-redis
    envs:
      - admin.env
EOF

if [ "$template" = no ]; then
    echo "wrote weft secrets to $out; apply with: kubectl apply -n <namespace> -k $out"
fi
