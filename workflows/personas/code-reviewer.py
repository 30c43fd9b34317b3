#!/usr/bin/env python3
"""code-reviewer - reviews the run's diff.

Contract (exec protocol, docs/personas.md):
  reads   `git diff <context.baseBranch>...HEAD` plus uncommitted changes
          in the workspace (the cwd)
  answers status "approved" when no added line has a finding, else
          "changes_requested". Findings: TODO/FIXME/XXX markers, lines
          over 120 characters, trailing whitespace, leftover debugger
          calls (pdb, breakpoint())
          result    {"findings": [{"file", "line", "rule"}...],
                     "files": N, "added_lines": N}
Deterministic; no network. An empty diff is approved.
"""
import re

import weft_persona as wp

RULES = [
    ("marker", re.compile(r"\b(TODO|FIXME|XXX)\b")),
    ("debugger", re.compile(r"\b(pdb\.set_trace|breakpoint)\(\)")),
    ("trailing-whitespace", re.compile(r"[ \t]+$")),
    ("long-line", re.compile(r"^.{121,}$")),
]


def main():
    req = wp.read_request()
    diff = wp.diff_text(req)
    findings = []
    files = set()
    count = 0
    for name, text in wp.added_lines(diff):
        files.add(name)
        count += 1
        for rule, rx in RULES:
            if rx.search(text):
                findings.append({"file": name, "line": text[:200],
                                 "rule": rule})
    verdict = "approved" if not findings else "changes_requested"
    wp.respond(verdict,
               result={"findings": findings, "files": len(files),
                       "added_lines": count},
               message="%d finding(s) in %d file(s)" % (len(findings),
                                                         len(files)))


if __name__ == "__main__":
    main()
