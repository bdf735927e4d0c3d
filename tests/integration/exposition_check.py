#!/usr/bin/env python3
"""Checks every line of a file against the Prometheus text exposition format
0.0.4 (what node_exporter's textfile collector parses), and the rules ipnfs
adds: each family has one HELP then one TYPE line before its samples, which
follow together; names start with ipnfs_, counters end in _total; no series
twice.  Prints one line per problem (file:line: why) and exits 1 if any."""

import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
# A label value: any character but " \ and newline, or one of the escapes.
VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})"
    rf"(?:\{{(?P<labels>(?:{LABEL}={VALUE})(?:,{LABEL}={VALUE})*,?)?\}})?"
    r" (?P<value>[+-]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|Inf|NaN))"
    r"(?: -?[0-9]+)?$"
)
HELP = re.compile(rf"^# HELP (?P<name>{NAME}) (?P<text>(?:[^\\\n]|\\\\|\\n)*)$")
TYPE = re.compile(rf"^# TYPE (?P<name>{NAME}) (?P<type>counter|gauge|histogram|summary|untyped)$")
PAIR = re.compile(rf"({LABEL})=({VALUE})")


def check(path: str) -> list[str]:
    problems: list[str] = []
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return [f"{path}: not UTF-8: {e}"]
    if text and not text.endswith("\n"):
        problems.append(f"{path}: the last line has no newline")
    helped: set[str] = set()
    typed: dict[str, str] = {}
    done: set[str] = set()  # families whose samples ended
    current = ""  # the family whose samples may follow
    series: set[str] = set()
    for n, line in enumerate(text.split("\n")[:-1] if text else [], start=1):
        where = f"{path}:{n}"
        if line.startswith("#"):
            m = HELP.match(line) or TYPE.match(line)
            if m is None:
                problems.append(f"{where}: neither HELP nor TYPE: {line!r}")
                continue
            name = m.group("name")
            if not name.startswith("ipnfs_"):
                problems.append(f"{where}: {name} lacks the ipnfs_ prefix")
            if line.startswith("# HELP"):
                if name in helped:
                    problems.append(f"{where}: a second HELP for {name}")
                helped.add(name)
                if current:
                    done.add(current)
                current = ""
            else:
                if name not in helped:
                    problems.append(f"{where}: TYPE of {name} before its HELP")
                if name in typed:
                    problems.append(f"{where}: a second TYPE for {name}")
                kind = m.group("type")
                typed[name] = kind
                if kind == "counter" and not name.endswith("_total"):
                    problems.append(f"{where}: counter {name} does not end in _total")
                if kind != "counter" and name.endswith("_total"):
                    problems.append(f"{where}: {kind} {name} ends in _total")
                current = name
            continue
        m = SAMPLE.match(line)
        if m is None:
            problems.append(f"{where}: not a sample: {line!r}")
            continue
        name = m.group("name")
        if name != current:
            problems.append(f"{where}: sample of {name} outside its family's HELP/TYPE block")
        if name in done:
            problems.append(f"{where}: samples of {name} are not together")
        labels = m.group("labels") or ""
        names = [k for k, _ in PAIR.findall(labels)]
        if len(names) != len(set(names)):
            problems.append(f"{where}: a label twice")
        if any(k.startswith("__") for k in names):
            problems.append(f"{where}: a reserved label name")
        key = name + "{" + ",".join(sorted(f"{k}={v}" for k, v in PAIR.findall(labels))) + "}"
        if key in series:
            problems.append(f"{where}: series {key} twice")
        series.add(key)
    for name in helped:
        if name not in typed:
            problems.append(f"{path}: {name} has no TYPE")
    return problems


def main() -> int:
    problems: list[str] = []
    for path in sys.argv[1:]:
        problems += check(path)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
