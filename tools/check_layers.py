#!/usr/bin/env python3
"""Checks that each folder includes only what docs/architecture.md allows.

  tools/check_layers.py [ROOT]

The rules are the table under "## Layers" in docs/architecture.md whose header
has the columns `folder` and `may include`: one row per folder, the folders
it may include as `dir/` words in backticks ("-" for none), and single
headers it may include from a folder it may not otherwise (`dir/file.hpp`).  A folder always
includes its own files; a nested folder (policies/plugins/) is a row of its
own and gets nothing from its parent's row.  The table is the only copy of
the rules, so the doc and the check cannot drift apart.

Every C and C++ file git knows of (tests/ excepted: a test includes what it
tests) must sit in a folder of the table, and every #include in it that names
a file of the tree, "..." or <...>, must land in its own folder or one its row
names.  An include "..." that names no file of the tree is an error too (a
system header takes <...>).  Each offence is printed as FILE:LINE: why;
the exit status is 1 if there was any, 2 if the table cannot be read.
"""

import os
import re
import subprocess
import sys

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".h", ".hpp")
UNCHECKED = ("tests/",)
# Where a quoted include is looked for after the including file's own folder:
# the tree's root (every library's include path) and include/ (the public
# headers, which clients and plugins include by bare name).
INCLUDE_PATH = ("", "include/")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
FOLDER_RE = re.compile(r"`([^`]+/)`")
HEADER_RE = re.compile(r"`([^`]+\.(?:h|hpp))`")


def fail(message):
    print(f"check_layers: {message}", file=sys.stderr)
    sys.exit(2)


def split_row(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_rules(doc_path):
    """{folder: set of folders and single headers it may include}, from the layer table."""
    try:
        with open(doc_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        fail(f"{doc_path}: {e.strerror}")
    try:
        start = lines.index("## Layers")
    except ValueError:
        fail(f"{doc_path}: no '## Layers' section")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("## "):
            break
        if not lines[i].startswith("|"):
            continue
        header = [cell.lower() for cell in split_row(lines[i])]
        if "folder" not in header or "may include" not in header:
            continue
        folder_col, allow_col = header.index("folder"), header.index("may include")
        rules = {}
        for number, line in enumerate(lines[i + 2 :], start=i + 3):
            if not line.startswith("|"):
                break
            cells = split_row(line)
            folders = FOLDER_RE.findall(cells[folder_col])
            if len(folders) != 1:
                fail(f"{doc_path}:{number}: the folder cell names no `dir/`")
            rules[folders[0]] = set(FOLDER_RE.findall(cells[allow_col])) | set(
                HEADER_RE.findall(cells[allow_col])
            )
        if not rules:
            fail(f"{doc_path}:{i + 1}: the layer table has no rows")
        return rules
    fail(f"{doc_path}: no table with columns 'folder' and 'may include' under '## Layers'")


def source_files(root):
    git = subprocess.run(
        ["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    if git.returncode != 0:
        fail(f"{root}: git ls-files failed (the check reads a git checkout): {git.stderr.strip()}")
    return sorted(
        p
        for p in git.stdout.splitlines()
        if p.endswith(SOURCE_SUFFIXES)
        and not p.startswith(UNCHECKED)
        and os.path.isfile(os.path.join(root, p))
    )


def folder_of(path, rules):
    """The longest folder of the table that holds `path`, or None."""
    best = None
    for folder in rules:
        if path.startswith(folder) and (best is None or len(folder) > len(best)):
            best = folder
    return best


def resolve(root, including, bracket, name):
    """The tree-relative path an include names, or None if not in the tree."""
    bases = list(INCLUDE_PATH)
    if bracket == '"':
        bases.insert(0, os.path.dirname(including) + "/")
    for base in bases:
        path = os.path.normpath(base + name)
        if not path.startswith("..") and os.path.isfile(os.path.join(root, path)):
            return path
    return None


def check_file(root, path, own, rules, doc):
    """(offences, number of includes of tree files) of one source file."""
    errors = []
    checked = 0
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            bracket, name = m.groups()
            target = resolve(root, path, bracket, name)
            if target is None:
                if bracket == '"':
                    errors.append(f'{path}:{number}: #include "{name}" names no file of the tree')
                continue
            checked += 1
            there = folder_of(target, rules)
            if there == own or there in rules[own] or target in rules[own]:
                continue
            allowed = ", ".join(sorted(rules[own])) or "nothing outside it"
            where = there if there is not None else "no folder of the layer table"
            errors.append(
                f"{path}:{number}: includes {target} ({where}); "
                f"{own} may include {allowed} ({doc})"
            )
    return errors, checked


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else here)
    doc = "docs/architecture.md"
    rules = read_rules(os.path.join(root, doc))
    for folder, allowed in rules.items():
        if not os.path.isdir(os.path.join(root, folder)):
            fail(f"{doc}: the layer table names {folder}, which does not exist")
        for other in allowed - rules.keys():
            if not other.endswith("/"):
                if not os.path.isfile(os.path.join(root, other)):
                    fail(f"{doc}: {folder} may include {other}, which does not exist")
                continue
            fail(f"{doc}: {folder} may include {other}, which is not a row of the layer table")

    errors = []
    checked = 0
    files = source_files(root)
    for path in files:
        own = folder_of(path, rules)
        if own is None:
            errors.append(f"{path}: in no folder of the layer table ({doc})")
            continue
        file_errors, file_checked = check_file(root, path, own, rules, doc)
        errors += file_errors
        checked += file_checked
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"check_layers: {len(errors)} problem(s) with the layer table", file=sys.stderr)
        return 1
    print(f"check_layers: {checked} includes in {len(files)} files follow {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
