#!/usr/bin/python3
"""external_persona - a persona that serves its queue without weft-worker.

A standalone worker for ONE persona queue, talking the Redis protocol of
docs/protocol.md ("External workers") directly. It needs only the Debian
packages python3-redis and python3-msgpack (hence /usr/bin/python3).

The persona is an example reviewer: it approves unless the step's params
say {"reject": true}, and returns the result {"reviewed_by": <name>}.

    WEFT_HMAC_KEY=... external_persona.py --redis unix:///run/redis.sock \\
        --queue external-reviewer --name reviewer-1

It does NOT call the `start` transition: the scheduler accepts a result
for a step that is still `queued`, so the step goes from `queued` to its
end without ever being `running`: no worker name, started time or
deadline (timeout_ms is not enforced). A worker that wants those calls
common/lua/start.lua as weft-worker does. SIGTERM finishes the current
job, then exits 0.
"""
import argparse
import hashlib
import hmac
import os
import signal
import time

import msgpack
import redis

GROUP = "workers"
stopping = False


def on_sigterm(signum, frame):
    global stopping
    stopping = True  # checked between jobs and after each (<= 2 s) read


def hmac_key():
    """The key as weft's own processes read it: the variable, else a file."""
    if os.environ.get("WEFT_HMAC_KEY"):
        return os.environ["WEFT_HMAC_KEY"].encode()
    with open(os.environ["WEFT_HMAC_KEY_FILE"], "rb") as f:
        key = f.read()
    return key[:-1] if key.endswith(b"\n") else key


def now_ms():
    return int(time.time() * 1000)


def review(job, name):
    """The persona's work. Returns (verdict, result, state, message)."""
    params = job.get("params") or {}
    if params.get("reject") is True:
        return "changes_requested", {"reviewed_by": name}, {}, "rejected"
    return "approved", {"reviewed_by": name}, {}, "looks good"


def result_event(p, a, run, step, attempt, status, body):
    """Queues the `result` message of docs/protocol.md on pipeline p."""
    p.xadd(f"{a.prefix}:events", {
        "type": "result", "run": run, "step": step, "attempt": attempt,
        "status": status, "worker": a.name, "body": body})


def handle(r, a, key, qkey, entry_id, f):
    """One queue entry: verify, decode, work, report (one MULTI/EXEC)."""
    p = r.pipeline(transaction=True)
    body, sig = f.get(b"body", b""), f.get(b"sig", b"").decode("ascii", "replace")
    good = hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(good, sig):
        # Forged or corrupt: dead-letter it (bookkeeping fields, then the
        # job's own fields as they were; protocol.md "Dead letters") and,
        # when the plain fields name a step, fail it as `invalid` (no retry).
        dead = {"dlq_origin": qkey, "dlq_entry": entry_id,
                "dlq_reason": "bad signature", "dlq_by": a.name,
                "dlq_at": now_ms()}
        dead.update(f)
        p.xadd(f"{a.prefix}:dlq", dead)
        if f.get(b"run") and f.get(b"step") and f.get(b"attempt", b"").isdigit():
            res = msgpack.packb({"v": 1, "status": "invalid",
                                 "message": "bad signature"})
            result_event(p, a, f[b"run"], f[b"step"], f[b"attempt"],
                         "invalid", res)
    else:
        # The job body: run, step, attempt, params, context, ... (protocol.md)
        job = msgpack.unpackb(body, raw=False)
        started = now_ms()
        verdict, result, state, message = review(job, a.name)
        res = msgpack.packb({
            "v": 1, "status": "success", "verdict": verdict, "result": result,
            "state": state, "message": message,
            "started": started, "finished": now_ms()})
        result_event(p, a, job["run"], job["step"], job["attempt"],
                     "success", res)
    p.xack(qkey, GROUP, entry_id)
    p.xdel(qkey, entry_id)
    p.execute()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis", default=os.environ.get("REDIS_URL",
                                                      "redis://127.0.0.1:6379"))
    ap.add_argument("--queue", required=True)
    ap.add_argument("--name", default=f"external-{os.getpid()}")
    ap.add_argument("--prefix", default=os.environ.get("WEFT_PREFIX", "weft"))
    a = ap.parse_args()
    key = hmac_key()
    signal.signal(signal.SIGTERM, on_sigterm)
    r = redis.Redis.from_url(a.redis)  # redis://host:port/db, unix:///path
    qkey = f"{a.prefix}:q:{a.queue}"
    try:  # at 0, not $: jobs queued before we came are still read
        r.xgroup_create(qkey, GROUP, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
    # First our own pending entries (left by a previous run of this
    # consumer name), then new ones.
    last = "0"
    while not stopping:
        reply = r.xreadgroup(GROUP, a.name, {qkey: last}, count=16, block=2000)
        entries = reply[0][1] if reply else []
        if last == "0" and not entries:
            last = ">"
        for entry_id, fields in entries:
            if stopping:
                break  # the rest stays pending for our next start
            handle(r, a, key, qkey, entry_id.decode(), fields or {})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
