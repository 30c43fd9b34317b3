#!/usr/bin/env python3
"""implementation-planner - writes the plan of a task.

Contract (exec protocol, docs/personas.md):
  reads   task.title, task.description (or params of the same names),
          params.stage; the workspace (the run's repository) is the cwd
  writes  PLAN.md in the workspace (replaced on a retry)
  answers status "success"
          result    {"plan_file": "PLAN.md", "plan": <the plan's text>,
                     "steps": <number of steps>}
          state     {"plan_file": "PLAN.md"}
          artifacts ["PLAN.md"]
Deterministic: the same task gives the same plan. No network.
"""
import weft_persona as wp


def main():
    req = wp.read_request()
    title = wp.task_text(req, "title", "Untitled task")
    description = wp.task_text(req, "description", "")
    stage = wp.task_text(req, "stage", "initial")
    name = wp.slug(title)
    steps = [
        "Read the code the change touches and its tests",
        "Add `%s` with a docstring that states its contract" % name,
        "Add a unit test for `%s`" % name,
        "Run the repository's tests",
        "Ask for code and security review",
    ]
    lines = ["# Plan: %s" % title, ""]
    if description:
        lines += [description, ""]
    lines += ["Stage: %s" % stage, "", "## Steps", ""]
    lines += ["- [ ] %s" % s for s in steps]
    plan = "\n".join(lines) + "\n"
    with open("PLAN.md", "w", encoding="utf-8") as f:
        f.write(plan)
    wp.log("wrote PLAN.md (%d steps)" % len(steps))
    wp.respond("success",
               result={"plan_file": "PLAN.md", "plan": plan,
                       "steps": len(steps)},
               state={"plan_file": "PLAN.md"},
               artifacts=["PLAN.md"],
               message="plan written to PLAN.md")


if __name__ == "__main__":
    main()
