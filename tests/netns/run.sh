#!/usr/bin/env bash
# Multi-host test: Redis, two schedulers and two workers each in their own
# network namespace, joined by a bridge in a sixth one, so they talk over a
# real (virtual) network as on separate hosts. 40 runs go through them;
# mid-run, work1's cable is pulled (its bridge port goes down, for good).
# work2 must take work1's jobs over (XAUTOCLAIM after the visibility) and
# every run must succeed with nothing left pending.
#
# usage: run.sh BUILD_DIR        (needs root: ip netns, veth, bridge)
# Prints "N passed, M failed" last; exits non-zero when anything failed.
# Skips (exit 0) only when the kernel refuses `ip netns add`.
set -euo pipefail

BUILD=${1:?usage: run.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
SCHED_BIN=$BUILD/scheduler/weft-scheduler
WORKER_BIN=$BUILD/worker/weft-worker
CLI_BIN=$BUILD/cli/weft

RUNS=${WEFT_NETNS_RUNS:-40}
WAIT_S=${WEFT_NETNS_WAIT:-90}
VIS_MS=3000

# Unique per invocation: namespace names and a /24 derived from the pid.
TAG="weft-$$"
SUBNET="10.77.$(($$ % 250 + 1))"
REDIS_IP="$SUBNET.1"
URL="redis://$REDIS_IP:6379"
export WEFT_HMAC_KEY="netns-test-hmac-key-0123456789"
export REDIS_URL=$URL

NS_BR="$TAG-br"
NODES=(redis s1 s2 w1 w2)
declare -A IP=([redis]="$SUBNET.1" [s1]="$SUBNET.11" [s2]="$SUBNET.12"
               [w1]="$SUBNET.21" [w2]="$SUBNET.22")
CREATED_NS=()
declare -A PID=()

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
now_ms() { date +%s%3N; }
ns() { echo "$TAG-$1"; }
# on NODE CMD...: runs CMD in NODE's namespace.
on() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
# start NODE CMD... &: the same for a background process. It execs, so $!
# is the process itself (with `on`, $! would be a subshell, and killing
# it would leave the process running after the test).
start() { local n=$1; shift; exec ip netns exec "$(ns "$n")" "$@"; }
# rcli ARGS...: redis-cli from the redis host, against the bridge address.
rcli() { on redis redis-cli -h "$REDIS_IP" -p 6379 "$@"; }

OUT=$(mktemp -d "${TMPDIR:-/tmp}/weft-netns.XXXXXX")

cleanup() {
    local rc=$?
    local p
    set +e
    for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 30); do
        local alive=0
        for p in "${PID[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PID[@]}"; do wait "$p" 2>/dev/null; done
    for p in "${CREATED_NS[@]}"; do ip netns del "$p" 2>/dev/null; done
    if [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ] && [ -z "${WEFT_NETNS_KEEP:-}" ]; then
        rm -rf "$OUT"
    else
        echo "logs kept in $OUT"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dump_logs() {
    local f
    for f in "$OUT"/*.log; do
        [ -e "$f" ] || continue
        echo "--- tail of $f"
        tail -n 15 "$f"
    done
}

die() {
    bad "$*"
    dump_logs
    echo "$passed passed, $failed failed"
    exit 1
}

for b in "$SCHED_BIN" "$WORKER_BIN" "$CLI_BIN"; do
    [ -x "$b" ] || die "missing binary $b"
done
for t in ip redis-server redis-cli; do
    command -v "$t" >/dev/null || die "missing tool $t"
done

# --- the network ----------------------------------------------------------
# The only reason to skip: the kernel refuses a network namespace.
if ! err=$(ip netns add "$NS_BR" 2>&1); then
    echo "skip: ip netns add refused: $err"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
CREATED_NS+=("$NS_BR")
ip -n "$NS_BR" link set lo up
ip -n "$NS_BR" link add br0 type bridge
ip -n "$NS_BR" link set br0 up
for n in "${NODES[@]}"; do
    ip netns add "$(ns "$n")"
    CREATED_NS+=("$(ns "$n")")
    # One cable per host: eth0 in the host, p-<node> on the bridge. Both
    # ends are created inside namespaces, never in the caller's one.
    ip -n "$NS_BR" link add "p-$n" type veth peer name eth0 netns "$(ns "$n")"
    ip -n "$NS_BR" link set "p-$n" master br0
    ip -n "$NS_BR" link set "p-$n" up
    ip -n "$(ns "$n")" link set lo up
    ip -n "$(ns "$n")" addr add "${IP[$n]}/24" dev eth0
    ip -n "$(ns "$n")" link set eth0 up
done
ok "network: bridge + ${#NODES[@]} hosts on $SUBNET.0/24 (namespaces $TAG-*)"

# --- the processes --------------------------------------------------------
start redis redis-server --bind "$REDIS_IP" --port 6379 --protected-mode no \
    --save "" --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
PID[redis]=$!
for _ in $(seq 50); do
    [ "$(rcli PING 2>/dev/null)" = "PONG" ] && break
    sleep 0.1
done
[ "$(rcli PING 2>/dev/null)" = "PONG" ] || die "redis did not start"

conn_ok=1
for n in s1 s2 w1 w2; do
    if [ "$(on "$n" timeout 5 redis-cli -h "$REDIS_IP" PING 2>&1)" != "PONG" ]; then
        conn_ok=0
        bad "connectivity: $n (${IP[$n]}) cannot reach redis at $REDIS_IP"
    fi
done
[ "$conn_ok" -eq 1 ] && ok "connectivity: s1 s2 w1 w2 reach redis over the bridge"
# And the hosts are really apart: no loopback shortcut to Redis.
if on w2 timeout 2 redis-cli -h 127.0.0.1 PING >/dev/null 2>&1; then
    bad "isolation: w2 reaches a redis on its own loopback"
else
    ok "isolation: w2 has no local redis"
fi

for i in 1 2; do
    start "s$i" "$SCHED_BIN" --name "s$i" --claim-idle 2000 \
        >"$OUT/s$i.log" 2>&1 &
    PID[s$i]=$!
    start "w$i" "$WORKER_BIN" --queues default --name "w$i" \
        --visibility "$VIS_MS" --concurrency 8 >"$OUT/w$i.log" 2>&1 &
    PID[w$i]=$!
done

# Both workers are reading the queue, each from its own address, before
# anything is submitted, so both get a share of the first jobs.
reading() {
    rcli CLIENT LIST | grep 'cmd=xreadgroup' |
        grep -cE "addr=(${IP[w1]}|${IP[w2]}):" || true
}
for _ in $(seq 100); do
    c=$(reading)
    [ "$c" -ge 2 ] && break
    sleep 0.1
done
[ "$c" -ge 2 ] ||
    die "workers not reading weft:q:default from ${IP[w1]} and ${IP[w2]}"
for n in s1 s2 w1 w2; do
    kill -0 "${PID[$n]}" 2>/dev/null || die "$n exited at start"
done
ok "processes: redis, s1, s2, w1, w2 running in their own namespaces"

# --- the workload ---------------------------------------------------------
cat >"$OUT/wf.yml" <<'EOF'
name: "netns-takeover"
version: "1.0.0"
description: "noop steps that take time, with a parallel group"
steps:
  - id: "prepare"
    type: "noop"
    params: {delay_ms: 400}
  - id: "fan"
    type: "parallel"
    wait_for: "all"
    dependencies: ["prepare"]
    steps:
      - id: "build"
        type: "noop"
        params: {delay_ms: 800}
      - id: "lint"
        type: "noop"
        params: {delay_ms: 300}
      - id: "docs"
        type: "noop"
        params: {delay_ms: 600}
  - id: "finish"
    type: "noop"
    dependencies: ["fan"]
    params: {delay_ms: 500}
EOF
LEAVES=5
: >"$OUT/tasks.jsonl"
for i in $(seq "$RUNS"); do
    printf '{"type": "netns", "n": %d}\n' "$i" >>"$OUT/tasks.jsonl"
done
# The client is one more host process: it runs beside Redis.
on redis "$CLI_BIN" submit "$OUT/wf.yml" --tasks "$OUT/tasks.jsonl" \
    --redis "$URL" >"$OUT/ids" 2>"$OUT/submit.err" ||
    die "weft submit failed: $(cat "$OUT/submit.err")"
mapfile -t IDS <"$OUT/ids"
[ "${#IDS[@]}" -eq "$RUNS" ] || die "submitted ${#IDS[@]} of $RUNS runs"
ok "submitted $RUNS runs through the client host"

# statuses: one status word per run, in IDS order.
statuses() {
    printf 'HGET weft:run:%s status\n' "${IDS[@]}" | rcli
}
# pending_of CONSUMER: jobs of weft:q:default pending on that consumer.
pending_of() {
    rcli XINFO CONSUMERS weft:q:default workers |
        awk -v c="$1" 'p == "name" && $0 == c { f = 1 }
                       f && p == "pending" { print; exit }
                       { p = $0 }
                       END { if (!f) print 0 }'
}

# Pull work1's cable mid-run: once a few runs have finished (w1 has done
# real work) and w1 holds jobs (which it will never report).
w1_pending=0
done_before=0
for _ in $(seq 300); do
    done_before=$(statuses | grep -c '^success$' || true)
    w1_pending=$(pending_of w1)
    [ "$done_before" -ge 4 ] && [ "$w1_pending" -ge 2 ] && break
    sleep 0.05
done
[ "$w1_pending" -ge 1 ] || die "w1 held no job when its link was to drop"
t_down=$(now_ms)
ip -n "$NS_BR" link set p-w1 down
ok "link down: w1's bridge port (w1 held $w1_pending jobs; $done_before/$RUNS runs done)"
if on w1 timeout 3 redis-cli -h "$REDIS_IP" PING >/dev/null 2>&1; then
    bad "link down: w1 still reaches redis"
else
    ok "link down: w1 can no longer reach redis"
fi

# --- the takeover ---------------------------------------------------------
deadline=$(($(date +%s) + WAIT_S))
t_claimed=""
while :; do
    if [ -z "$t_claimed" ] && [ "$(pending_of w1)" -eq 0 ]; then
        t_claimed=$(now_ms)
    fi
    st=$(statuses)
    left=$(grep -cvE '^(success|failed|cancelled)$' <<<"$st" || true)
    [ "$left" -eq 0 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        bad "runs: $left of $RUNS not terminal after ${WAIT_S}s"
        for id in "${IDS[@]}"; do
            s=$(rcli HGET "weft:run:$id" status)
            case $s in success | failed | cancelled) ;;
            *) echo "  $id: $s"; rcli HGETALL "weft:run:$id:steps" |
                paste -sd' ' | sed 's/^/    /' ;;
            esac
        done
        break
    fi
    sleep 0.2
done
[ -n "$t_claimed" ] || t_claimed=$(now_ms)

n_ok=$(grep -cx success <<<"$st" || true)
if [ "$n_ok" -eq "$RUNS" ]; then
    ok "runs: all $RUNS succeeded"
else
    bad "runs: $n_ok of $RUNS succeeded"
    for id in "${IDS[@]}"; do
        s=$(rcli HGET "weft:run:$id" status)
        [ "$s" = success ] ||
            echo "  $id: $s $(rcli HGET "weft:run:$id" error)"
    done
fi

# Nothing left in the workers group: w1's jobs were claimed and acked.
pend=$(rcli XPENDING weft:q:default workers | head -n 1)
qlen=$(rcli XLEN weft:q:default)
if [ "$pend" = 0 ]; then
    ok "queue: no job pending in weft:q:default/workers (length $qlen)"
else
    bad "queue: $pend jobs still pending in weft:q:default/workers"
    rcli XPENDING weft:q:default workers - + 20 | paste -sd' '
fi
dlq=$(rcli XLEN weft:dlq)
if [ "$dlq" = 0 ]; then ok "dlq: empty"; else bad "dlq: $dlq entries"; fi

# Who ran what: the S:worker field of every leaf step of every run.
printf 'HGETALL weft:run:%s:steps\n' "${IDS[@]}" | rcli |
    awk 'w { print; w = 0; next } /:worker$/ { w = 1 }' >"$OUT/workers"
on_w1=$(grep -cx w1 "$OUT/workers" || true)
on_w2=$(grep -cx w2 "$OUT/workers" || true)
total=$((RUNS * LEAVES))
if [ "$((on_w1 + on_w2))" -eq "$total" ] && [ "$on_w2" -gt 0 ]; then
    ok "steps: $total recorded, $on_w1 finished on w1, $on_w2 on w2"
else
    bad "steps: w1 $on_w1 + w2 $on_w2 != $total"
fi

# The takeover: w2 claimed the jobs w1 held, and re-ran them.
reclaimed=0
for id in "${IDS[@]}"; do
    c=$(rcli XRANGE "weft:run:$id:history" - + |
        awk 'p == "step" { s = $0 }
             p == "worker" { if (last[s] == "w1" && $0 == "w2") n++
                             last[s] = $0 }
             { p = $0 }
             END { print n + 0 }')
    reclaimed=$((reclaimed + c))
done
if [ "$reclaimed" -ge 1 ]; then
    ok "takeover: $reclaimed steps started on w1 were run again on w2"
else
    bad "takeover: no step moved from w1 to w2"
fi

t_last=$(printf 'HGET weft:run:%s finished\n' "${IDS[@]}" | rcli |
    sort -n | tail -n 1)
for n in redis s1 s2 w2 w1; do
    kill -0 "${PID[$n]}" 2>/dev/null || bad "process: $n died (see $OUT/$n.log)"
done
echo "figures: w1 held $w1_pending jobs at link down;" \
    "all claimed by w2 after $((t_claimed - t_down)) ms" \
    "(visibility ${VIS_MS} ms); last run finished $((t_last - t_down)) ms" \
    "after link down; steps w1=$on_w1 w2=$on_w2"


# --- the cable back -------------------------------------------------------
# Not part of the takeover, but what a real outage ends with: work1 must
# talk to Redis again by itself (no restart) and take new work. weft sets
# no command timeout, TCP keepalive or TCP_USER_TIMEOUT on its Redis
# connections, so w1 neither notices the outage nor reconnects: its old
# connections resume when the kernel's next TCP retransmission gets
# through, which after this outage can take tens of seconds (RTO backoff,
# at most 120 s). Wait for that, bounded, then require w1 to work again.
if grep -qiE 'disconnect|connection lost|reconnect' "$OUT/w1.log"; then
    echo "note: w1 logged the loss of its Redis connection"
else
    echo "note: w1 logged nothing about its Redis connections during the outage"
fi
# Alive when one of w1's connections has just run a command.
w1_idle() {
    rcli CLIENT LIST | grep "addr=${IP[w1]}:" |
        sed -E 's/.* idle=([0-9]+) .*/\1/' | sort -n | head -n 1
}
i=$(w1_idle)
if [ -n "$i" ] && [ "$i" -ge 2 ]; then
    ok "outage: w1's connections silent for ${i}s (Redis still lists them)"
else
    bad "outage: w1's connections not silent (idle '${i}')"
fi
ip -n "$NS_BR" link set p-w1 up
t_up=$(now_ms)
t_back=""
rec_deadline=$(($(date +%s) + 130))
while [ "$(date +%s)" -lt "$rec_deadline" ]; do
    i=$(w1_idle)
    if [ -n "$i" ] && [ "$i" -le 1 ]; then
        t_back=$(now_ms)
        break
    fi
    sleep 0.2
done
if [ -n "$t_back" ]; then
    ok "link up: w1 talks to redis again $((t_back - t_up)) ms after"
else
    bad "link up: w1 silent 130 s after its link came back"
fi
on redis "$CLI_BIN" submit "$OUT/wf.yml" --tasks "$OUT/tasks.jsonl" \
    --redis "$URL" >"$OUT/ids2" 2>"$OUT/submit2.err" ||
    die "weft submit (2) failed: $(cat "$OUT/submit2.err")"
mapfile -t IDS <"$OUT/ids2"
deadline=$(($(date +%s) + WAIT_S))
while :; do
    st=$(statuses)
    left=$(grep -cvE '^(success|failed|cancelled)$' <<<"$st" || true)
    [ "$left" -eq 0 ] && break
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.2
done
n_ok=$(grep -cx success <<<"$st" || true)
printf 'HGETALL weft:run:%s:steps\n' "${IDS[@]}" | rcli |
    awk 'w { print; w = 0; next } /:worker$/ { w = 1 }' >"$OUT/workers2"
recovery_ms=$(( ${t_back:-$t_up} - t_up ))
again_w1=$(grep -cx w1 "$OUT/workers2" || true)
again_w2=$(grep -cx w2 "$OUT/workers2" || true)
if [ "$n_ok" -eq "$RUNS" ] && [ "$again_w1" -gt 0 ]; then
    ok "link up: $RUNS more runs succeeded, steps w1=$again_w1 w2=$again_w2"
else
    bad "link up: $n_ok of $RUNS more runs succeeded, steps w1=$again_w1 w2=$again_w2"
fi
pend=$(rcli XPENDING weft:q:default workers | head -n 1)
if [ "$pend" = 0 ]; then
    ok "link up: nothing pending in weft:q:default/workers"
else
    bad "link up: $pend jobs pending in weft:q:default/workers"
fi

echo "figures: after the link came back, w1 resumed in $recovery_ms ms" \
    "and ran $again_w1 of the next $((RUNS * LEAVES)) steps"

[ "$failed" -eq 0 ] || dump_logs
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
