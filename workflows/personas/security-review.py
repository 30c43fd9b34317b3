#!/usr/bin/env python3
"""security-review - looks for risky code and secrets in the run's diff.

Contract (exec protocol, docs/personas.md):
  reads   `git diff <context.baseBranch>...HEAD` plus uncommitted changes
          in the workspace (the cwd)
  answers status "approved" when no added line has a finding, else
          "changes_requested". Findings: private keys, AWS access key ids,
          hard-coded passwords or tokens, eval/exec, shell=True,
          os.system, pickle.loads, yaml.load without a safe loader
          result    {"findings": [{"file", "line", "rule"}...],
                     "added_lines": N}
Deterministic; no network. A finding's line is shown with any secret
value cut, so the report does not spread it.
"""
import re

import weft_persona as wp

RULES = [
    ("private-key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("aws-access-key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("hard-coded-secret",
     re.compile(r"(?i)\b(password|passwd|secret|token|api_key)\s*[:=]\s*"
                r"['\"][^'\"]{4,}['\"]")),
    ("eval", re.compile(r"\b(eval|exec)\s*\(")),
    ("shell-true", re.compile(r"shell\s*=\s*True")),
    ("os-system", re.compile(r"\bos\.system\s*\(")),
    ("pickle", re.compile(r"\bpickle\.loads?\s*\(")),
    ("yaml-load", re.compile(r"\byaml\.load\s*\((?![^)]*Loader=yaml\.Safe)")),
]


def main():
    req = wp.read_request()
    findings = []
    count = 0
    for name, text in wp.added_lines(wp.diff_text(req)):
        count += 1
        for rule, rx in RULES:
            m = rx.search(text)
            if m:
                shown = text[:m.start()] + "<" + rule + ">"
                findings.append({"file": name, "line": shown[:200],
                                 "rule": rule})
    verdict = "approved" if not findings else "changes_requested"
    wp.respond(verdict,
               result={"findings": findings, "added_lines": count},
               message="%d finding(s)" % len(findings))


if __name__ == "__main__":
    main()
