#!/usr/bin/env python3
"""lead-engineer - implements the task: a function and its unit test.

Contract (exec protocol, docs/personas.md):
  reads   task.title (or params.title): the function is named after it
          (snake_case), params.file / task.file: the module to extend
          (default feature.py, or ui.py with --area frontend),
          params.bug / task.bug: when true, the function returns a wrong
          value (to see QA report "fail")
  writes  appends `def <name>()` to the module (once: a retry does not
          append again) and writes test_<name>.py next to it, a unittest
          that `python3 -m unittest` discovers. It does not commit: the
          workflow's git commit step does.
  answers status "success"
          result    {"function": name, "files": [module, test]}
          artifacts [module, test]
Deterministic; no network.
"""
import os
import sys

import weft_persona as wp


def main():
    area = "backend"
    if "--area" in sys.argv[1:-1]:
        area = sys.argv[sys.argv.index("--area") + 1]
    req = wp.read_request()
    title = wp.task_text(req, "title", "change")
    name = wp.slug(title)
    default_file = "ui.py" if area == "frontend" else "feature.py"
    module = wp.task_text(req, "file", default_file)
    if os.path.isabs(module) or ".." in module.split("/") or \
            not module.endswith(".py"):
        wp.respond("fatal", message="file %r: a relative .py path inside "
                   "the repository is required" % module)
    bug = wp.task_text(req, "bug", "").lower() in ("1", "true", "yes")
    value = "%s done" % name
    returned = "not " + value if bug else value
    existing = ""
    if os.path.exists(module):
        with open(module, encoding="utf-8") as f:
            existing = f.read()
    if "def %s(" % name not in existing:
        os.makedirs(os.path.dirname(module) or ".", exist_ok=True)
        with open(module, "a", encoding="utf-8") as f:
            if existing and not existing.endswith("\n"):
                f.write("\n")
            if existing:
                f.write("\n\n")
            f.write('def %s():\n    """%s (%s)."""\n    return %r\n'
                    % (name, title.replace('"', "'"), area, returned))
        wp.log("added %s() to %s" % (name, module))
    test = os.path.join(os.path.dirname(module), "test_%s.py" % name)
    mod_name = os.path.splitext(os.path.basename(module))[0]
    with open(test, "w", encoding="utf-8") as f:
        f.write("import unittest\n\nimport %s\n\n\n" % mod_name)
        f.write("class Test%s(unittest.TestCase):\n" %
                "".join(w.capitalize() for w in name.split("_")))
        f.write("    def test_%s(self):\n" % name)
        f.write("        self.assertEqual(%s.%s(), %r)\n\n\n"
                % (mod_name, name, value))
        f.write('if __name__ == "__main__":\n    unittest.main()\n')
    wp.respond("success",
               result={"function": name, "files": [module, test],
                       "area": area},
               artifacts=[module, test],
               message="implemented %s() in %s" % (name, module))


if __name__ == "__main__":
    main()
