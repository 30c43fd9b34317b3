#!/usr/bin/env python3
"""technical-writer - documents the change.

Contract (exec protocol, docs/personas.md):
  reads   task.title, task.description (or params), params.plan
  writes  docs/<slug of the title>.md (replaced on a retry)
  answers status "success"
          result    {"file": "docs/<slug>.md"}
          artifacts ["docs/<slug>.md"]
Deterministic; no network.
"""
import os

import weft_persona as wp


def main():
    req = wp.read_request()
    title = wp.task_text(req, "title", "Change")
    description = wp.task_text(req, "description", "")
    plan = wp.task_text(req, "plan", "")
    path = os.path.join("docs", wp.slug(title) + ".md")
    os.makedirs("docs", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# %s\n\n" % title)
        if description:
            f.write(description + "\n\n")
        if plan:
            f.write("## How it was planned\n\n" + plan + "\n")
    wp.respond("success", result={"file": path}, artifacts=[path],
               message="documented in %s" % path)


if __name__ == "__main__":
    main()
