#!/usr/bin/env python3
"""plan-evaluator - approves or rejects the plan in PLAN.md.

Contract (exec protocol, docs/personas.md):
  reads   PLAN.md in the workspace (the cwd)
  answers status "approved" when PLAN.md exists, has a title line
          ("# ...") and at least one step ("- [ ] ..."), else "rejected"
          result    {"plan_file": "PLAN.md", "steps": N, "problems": [...]}
          state     {"plan_approved": true|false}
Deterministic; no network.
"""
import weft_persona as wp


def main():
    wp.read_request()
    problems = []
    steps = 0
    try:
        with open("PLAN.md", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        text = ""
        problems.append("PLAN.md cannot be read: %s" % e.strerror)
    if text:
        if not any(line.startswith("# ") for line in text.splitlines()):
            problems.append("the plan has no title line")
        steps = sum(1 for line in text.splitlines()
                    if line.startswith("- [ ] "))
        if steps == 0:
            problems.append("the plan lists no steps")
    approved = not problems
    wp.respond("approved" if approved else "rejected",
               result={"plan_file": "PLAN.md", "steps": steps,
                       "problems": problems},
               state={"plan_approved": approved},
               message="plan approved" if approved else "; ".join(problems))


if __name__ == "__main__":
    main()
