"""weft_persona - the small shared part of the example personas.

The `exec` protocol (docs/personas.md): the request is one JSON document
on stdin, the response one JSON document on stdout, the working directory
is the run's workspace. Only the standard library is used, so a persona
runs wherever python3 does.

Transcripts: when WEFT_TRANSCRIPTS names a directory (set it in the
worker's environment; personas inherit it), every request and response
is also saved there as <run>/<step>.<attempt>.request.json and
.response.json, outside the repository, so a demo can show afterwards
what each persona was asked and what it answered.
"""
import json
import os
import re
import subprocess
import sys


_request = {}


def _transcript(kind, doc):
    """Saves doc under $WEFT_TRANSCRIPTS (see above); never fails."""
    root = os.environ.get("WEFT_TRANSCRIPTS")
    if not root:
        return
    run = str(_request.get("run") or os.environ.get("WEFT_RUN_ID", "run"))
    step = _request.get("step") or {}
    sid = str(step.get("id") or os.environ.get("WEFT_STEP_ID", "step"))
    name = "%s.%s.%s.json" % (sid, step.get("attempt", 1), kind)
    try:
        os.makedirs(os.path.join(root, run), exist_ok=True)
        with open(os.path.join(root, run, name), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
    except (OSError, ValueError) as e:
        log("cannot save the %s transcript: %s" % (kind, e))


def read_request():
    """The request from stdin, as a dict."""
    global _request
    _request = json.load(sys.stdin)
    _transcript("request", _request)
    return _request


def respond(status, result=None, state=None, artifacts=None, message=None):
    """Prints the response and exits 0 (a non-zero exit is an `error`)."""
    doc = {"status": status}
    if result is not None:
        doc["result"] = result
    if state is not None:
        doc["state"] = state
    if artifacts is not None:
        doc["artifacts"] = artifacts
    if message is not None:
        doc["message"] = message
    _transcript("response", doc)
    json.dump(doc, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    sys.exit(0)


def log(*args):
    """Progress for the operator: stderr is kept (its tail) on failure."""
    print(*args, file=sys.stderr)


def task_text(req, key, default=""):
    """A field of the task, then of the step's params, as text."""
    task = req.get("task") or {}
    params = (req.get("step") or {}).get("params") or {}
    for src in (params, task):
        value = src.get(key)
        if value not in (None, ""):
            return str(value)
    return default


def slug(text, default="change"):
    """A snake_case identifier from free text: "Add greeting!" -> add_greeting."""
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    ident = "_".join(words)[:48].strip("_")
    if not ident:
        return default
    if ident[0].isdigit():
        ident = "f_" + ident
    return ident


def git(*args, check=False):
    """Runs git in the workspace (argv, never a shell); (code, stdout)."""
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        return 127, ""
    if check and proc.returncode != 0:
        raise RuntimeError("git %s: %s" % (" ".join(args), proc.stderr.strip()))
    return proc.returncode, proc.stdout


def is_git_repo():
    code, out = git("rev-parse", "--is-inside-work-tree")
    return code == 0 and out.strip() == "true"


def diff_text(req):
    """What changed: baseBranch...HEAD plus uncommitted changes (tracked
    and new files), or "" outside a git repository."""
    if not is_git_repo():
        return ""
    base = ((req.get("context") or {}).get("baseBranch")) or "main"
    parts = []
    code, out = git("rev-parse", "--verify", "--quiet", base + "^{commit}")
    if code == 0:
        code, out = git("diff", "--no-color", base + "...HEAD")
        if code == 0:
            parts.append(out)
    code, out = git("diff", "--no-color", "HEAD")
    if code == 0:
        parts.append(out)
    code, out = git("ls-files", "--others", "--exclude-standard")
    for name in out.splitlines() if code == 0 else []:
        try:
            with open(name, encoding="utf-8", errors="replace") as f:
                body = f.read()
        except OSError:
            continue
        parts.append("+++ b/%s\n" % name +
                     "".join("+" + line + "\n" for line in body.splitlines()))
    return "".join(parts)


def added_lines(diff):
    """(file, line text) for every added line of a unified diff."""
    current = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = line[4:]
            if current.startswith("b/"):
                current = current[2:]
        elif line.startswith("+") and current is not None:
            yield current, line[1:]
