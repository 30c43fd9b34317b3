#!/usr/bin/env python3
"""scripted - a persona whose behaviour the test picks with params.mode.

Used by tests/integration/test_persona.c to exercise the worker's exec
adapter: every way a persona can answer, fail, flood or hang.

  answer   print params.response (any JSON) as the response
  exit     write params.stderr (text) or params.stderr_hex (bytes) to
           stderr, exit with params.code
  sized    answer status "pass" with a response of exactly params.size
           bytes (the result string pads it)
  garbage  print text that is not JSON, with a line on stderr
  flood    write params.bytes bytes to stdout (then a valid response)
  hang     start a `sleep` child (of params.sleep seconds, default
           1000: a value of its own lets a test find its children by
           their command line), write "<pid> <child pid>" to
           params.pidfile and/or append "<run> <step> <attempt> <pid>
           <pid start> <child pid> <child start> <us> <parent pid>" to
           params.pidlog (start: the start time in /proc/PID/stat, so a
           reused pid is told apart; us: the wall clock in microseconds;
           the parent is the worker), then sleep;
           params.ignore_term: ignore SIGTERM (the child too)
  echo     answer success with result {request, env, cwd}: the request as
           read from stdin and the variables the worker sets
  gate     a service that may be down (tests/integration/test_faults.c):
           append "$WHO run step attempt" to params.log, then answer
           status "error" while the file params.down + "-" + $WHO exists,
           else success with result {"who": $WHO}
"""
import json
import os
import signal
import subprocess
import sys
import time


def start_time(pid):
    """Field 22 of /proc/PID/stat: when the process started (clock ticks
    since boot). The name before it may hold spaces and parentheses."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def main():
    req = json.load(sys.stdin)
    params = req["step"]["params"]
    mode = params.get("mode")
    if mode == "answer":
        json.dump(params["response"], sys.stdout)
    elif mode == "exit":
        sys.stderr.write(params.get("stderr", ""))
        sys.stderr.flush()
        sys.stderr.buffer.write(bytes.fromhex(params.get("stderr_hex", "")))
        sys.exit(params["code"])
    elif mode == "sized":
        head, tail = '{"status": "pass", "result": "', '"}'
        pad = params["size"] - len(head) - len(tail)
        sys.stdout.write(head + "x" * pad + tail)
    elif mode == "garbage":
        sys.stderr.write("garbage on stderr\n")
        sys.stdout.write("this is not json {\n")
    elif mode == "flood":
        chunk = b"x" * 65536
        left = params["bytes"]
        out = sys.stdout.buffer
        while left > 0:
            n = min(left, len(chunk))
            out.write(chunk[:n])
            left -= n
        out.write(b'{"status": "success"}')
    elif mode == "hang":
        if params.get("ignore_term"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", str(params.get("sleep", 1000))])
        if "pidfile" in params:
            with open(params["pidfile"] + ".tmp", "w") as f:
                f.write("%d %d\n" % (os.getpid(), child.pid))
            os.rename(params["pidfile"] + ".tmp", params["pidfile"])
        if "pidlog" in params:
            line = "%s %s %d %d %d %d %d %d %d\n" % (
                req["run"], req["step"]["id"], req["step"]["attempt"],
                os.getpid(), start_time(os.getpid()), child.pid,
                start_time(child.pid), int(time.time() * 1e6),
                os.getppid())
            # One write on an O_APPEND descriptor: lines never interleave.
            fd = os.open(params["pidlog"],
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, line.encode())
            os.close(fd)
        while True:
            time.sleep(1)
    elif mode == "echo":
        env = {k: os.environ.get(k) for k in
               ("WEFT_RUN_ID", "WEFT_STEP_ID", "TRACEPARENT",
                "PERSONA_FLAVOUR", "WEFT_TEST_SECRET")}
        json.dump({"status": "success",
                   "result": {"request": req, "env": env,
                              "cwd": os.getcwd()}}, sys.stdout)
    elif mode == "gate":
        who = os.environ.get("WHO", "")
        with open(params["log"], "a") as f:
            f.write("%s %s %s %d\n" % (who, req["run"], req["step"]["id"],
                                       req["step"]["attempt"]))
        if os.path.exists(params["down"] + "-" + who):
            json.dump({"status": "error", "message": who + " is down"},
                      sys.stdout)
        else:
            json.dump({"status": "success", "result": {"who": who}},
                      sys.stdout)
    else:
        sys.stderr.write("unknown mode %r\n" % mode)
        sys.exit(2)


if __name__ == "__main__":
    main()
