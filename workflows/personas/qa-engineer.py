#!/usr/bin/env python3
"""qa-engineer - runs the repository's own tests.

Contract (exec protocol, docs/personas.md):
  reads   the workspace (the cwd): runs `sh run-tests.sh` when that file
          exists, else `python3 -m unittest` (discovers test*.py) when
          there are Python tests, else nothing
  answers status "pass" when the tests pass (or there are none),
          "fail" when they fail: both are verdicts, the step succeeds and
          the workflow's conditions read qa_status
          result    {"command": [...], "exit_code": N, "output": <tail>}
          state     {"qa_status": "pass"|"fail"}
Deterministic as the tests are; no network. The tests run with this
persona's timeout (the worker kills the whole process group).
"""
import os
import subprocess

import weft_persona as wp

# Output kept in the result: enough to see which test failed.
OUTPUT_TAIL = 4000


def has_python_tests():
    for root, dirs, files in os.walk("."):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(f.startswith("test") and f.endswith(".py") for f in files):
            return True
    return False


def main():
    wp.read_request()
    if os.path.exists("run-tests.sh"):
        cmd = ["sh", "run-tests.sh"]
    elif has_python_tests():
        cmd = ["python3", "-m", "unittest", "discover", "-v"]
    else:
        wp.respond("pass", result={"command": [], "exit_code": 0,
                                   "output": "no tests found"},
                   state={"qa_status": "pass"},
                   message="no tests found")
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace")
    verdict = "pass" if proc.returncode == 0 else "fail"
    output = proc.stdout[-OUTPUT_TAIL:]
    wp.log(output)
    wp.respond(verdict,
               result={"command": cmd, "exit_code": proc.returncode,
                       "output": output},
               state={"qa_status": verdict},
               message="%s: %s exited %d" % (verdict, " ".join(cmd),
                                              proc.returncode))


if __name__ == "__main__":
    main()
