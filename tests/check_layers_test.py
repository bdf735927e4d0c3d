#!/usr/bin/env python3
"""tools/check_layers.py on planted trees: it must name each include the
layer table forbids, file and line, and pass the real tree."""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CHECK = os.path.join(ROOT, "tools", "check_layers.py")

TABLE = """# architecture

## Layers

| folder | job | may include |
| --- | --- | --- |
| `low/` | the bottom | - |
| `high/` | above it | `low/` |
| `high/inner/` | nested, gets nothing from high/ | - |

## Next
"""


def run(root):
    r = subprocess.run([sys.executable, CHECK, root], capture_output=True, text=True)
    return r.returncode, r.stderr.splitlines()


def plant(root, files):
    subprocess.run(["git", "init", "-q", root], check=True)
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)


def expect(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main():
    code, err = run(ROOT)
    expect(code == 0, f"the tree follows docs/architecture.md: {err}")

    with tempfile.TemporaryDirectory() as root:
        plant(
            root,
            {
                "docs/architecture.md": TABLE,
                "low/a.hpp": "#pragma once\n",
                "low/b.cpp": '#include "low/a.hpp"\n#include "a.hpp"\n#include <string>\n',
                "high/c.cpp": '#include "low/a.hpp"\n#include <low/a.hpp>\n',
                "high/inner/d.cpp": '\n#include "low/a.hpp"\n',
                "low/e.cpp": '#include <vector>\n  #  include "high/c.cpp"\n',
                "low/f.cpp": '#include "missing.hpp"\n',
                "other/g.cpp": "\n",
                "tests/h.cpp": '#include "high/c.cpp"\n',
            },
        )
        code, err = run(root)
        expect(code == 1, f"a planted tree fails: {code} {err}")
        named = sorted(line.split(": ")[0] for line in err[:-1])
        expect(
            named == ["high/inner/d.cpp:2", "low/e.cpp:2", "low/f.cpp:1", "other/g.cpp"],
            f"each offence and nothing else, by file and line: {err}",
        )

        with open(os.path.join(root, "docs/architecture.md"), "w", encoding="utf-8") as f:
            f.write(TABLE.replace("`low/` |\n", "`lo/` |\n"))
        code, err = run(root)
        expect(code == 2, f"a table naming no row is refused: {code} {err}")
    print("check_layers_test: ok")


if __name__ == "__main__":
    main()
