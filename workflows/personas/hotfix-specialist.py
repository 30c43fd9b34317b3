#!/usr/bin/env python3
"""hotfix-specialist - applies an urgent fix.

Contract (exec protocol, docs/personas.md):
  reads   params.title, params.description, params.severity,
          params.branch (hotfix.yml passes them); task.file, task.find
          and task.replace (or params of the same names): when all three
          are given, the first occurrence of `find` in `file` is replaced
  writes  the replacement, and a HOTFIX.md entry describing the fix
          (one per title: a retry does not add another). It does not
          commit: the workflow's git commit step does.
  answers status "success", or "fatal" when `find` is not in `file` (a
          fix that cannot apply will not apply on a retry either)
          result    {"files": [...], "replaced": true|false,
                     "severity": ...}
          artifacts the files changed
Deterministic; no network.
"""
import os

import weft_persona as wp


def main():
    req = wp.read_request()
    title = wp.task_text(req, "title", "hotfix")
    description = wp.task_text(req, "description", "")
    severity = wp.task_text(req, "severity", "high")
    path = wp.task_text(req, "file", "")
    find = wp.task_text(req, "find", "")
    replace = wp.task_text(req, "replace", "")
    changed = []
    replaced = False
    if path and find:
        if os.path.isabs(path) or ".." in path.split("/"):
            wp.respond("fatal", message="file %r must be a relative path "
                       "inside the repository" % path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            wp.respond("fatal", message="%s: %s" % (path, e.strerror))
        if find not in text:
            if replace and replace in text:
                replaced = True  # applied by an earlier attempt
            else:
                wp.respond("fatal", message="%r not found in %s" %
                           (find, path))
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text.replace(find, replace, 1))
            replaced = True
            changed.append(path)
    entry = "## %s\n\nSeverity: %s\n\n%s\n" % (title, severity, description)
    log = ""
    if os.path.exists("HOTFIX.md"):
        with open("HOTFIX.md", encoding="utf-8") as f:
            log = f.read()
    if "## %s\n" % title not in log:
        with open("HOTFIX.md", "a", encoding="utf-8") as f:
            f.write(("\n" if log else "# Hotfixes\n\n") + entry)
    changed.append("HOTFIX.md")
    wp.respond("success",
               result={"files": changed, "replaced": replaced,
                       "severity": severity},
               artifacts=changed,
               message="fixed: %s" % title)


if __name__ == "__main__":
    main()
