#!/usr/bin/env python3
"""bench/run.sh draws its charts: a short real run of every part that has
one (fan-out, latency, event-loop receivers, TAP, memory) in the build tree
given, then each chart is a valid SVG and PNG that names the contenders it
draws.

    bench/plot_test.py BUILD_DIR      (as root; ctest's bench_plots)

Exits 77 (ctest: skipped) without root or matplotlib, unless CI=true: then
that is a failure.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVG = "{http://www.w3.org/2000/svg}"

# chart -> what its SVG must say (contenders, receivers, paths).
EXPECTED = {
    "fanout-64B": ["ipnfs plain", "pipes", "null FUSE", "receivers N"],
    "latency": ["ipnfs plain", "pipes", "AF_UNIX dgram", "null FUSE", "vde_switch hub", "p99"],
    "receivers-latency": ["blocking read()", "epoll, level-triggered", "ipnfs plain", "pipes"],
    "receivers-throughput": ["blocking read()", "ipnfs plain", "pipes", "lossy"],
    "tap": ["ipnfs switch, lossy", "ipnfs switch, lossless", "vde_switch + vde_plug2tap"],
    "memory": ["receivers N", "readers stalled"],
}


def cannot_run(why: str) -> None:
    if os.environ.get("CI") == "true":
        sys.exit(f"FAIL: {why} (CI=true: the test must run)")
    print(f"SKIP: {why}")
    sys.exit(77)


def svg_text(path: str) -> str:
    """Every <text> of the SVG, joined: what a reader sees."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg", f"{path}: root is {root.tag}, not svg"
    return " ".join("".join(t.itertext()) for t in root.iter(SVG + "text"))


def png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path}: not a PNG"
    return struct.unpack(">II", head[16:24])


def main() -> None:
    build = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        cannot_run("needs root (the benchmark mounts ipnfs, makes TAPs and namespaces)")
    if not any(shutil.which(p) and subprocess.run([p, "-c", "import matplotlib"],
                                                  capture_output=True).returncode == 0
               for p in ("python3", "/usr/bin/python3")):
        cannot_run("no python3 imports matplotlib (tools/deps.sh --test: python3-matplotlib)")
    with tempfile.TemporaryDirectory(prefix="ipnfs-plot-test.") as tmp:
        out = os.path.join(tmp, "r.md")
        cmd = ["bench/run.sh", "--only", "fanout,latency,receivers,tap,memory", "--fanout", "1,4",
               "--sizes", "64", "--modes", "lossless", "--contenders", "ipnfs plain,pipes,null",
               "--reps", "1", "--seconds", "0.2", "--latency-seconds", "0.2",
               "--tap-seconds", "1", "--stall-seconds", "2", "--pairs", "1",
               "--receiver", "blocking,epoll-lt", "--out", out]
        started = time.monotonic()
        p = subprocess.run(cmd, cwd=SOURCE, env={**os.environ, "BUILD_DIR": build},
                           capture_output=True, text=True, timeout=150)
        took = time.monotonic() - started
        print(p.stderr[-3000:])
        assert p.returncode == 0, f"run.sh exited {p.returncode}"
        assert "charts in" in p.stderr, "run.sh did not say where the charts are"
        assert os.path.exists(os.path.join(tmp, "r.json")), "no r.json beside r.md"
        for chart, words in EXPECTED.items():
            svg = os.path.join(tmp, f"r-{chart}.svg")
            png = os.path.join(tmp, f"r-{chart}.png")
            for path in (svg, png):
                assert os.path.exists(path), f"{os.path.basename(path)} missing: " \
                    f"{sorted(os.listdir(tmp))}"
            text = svg_text(svg)
            for word in words:
                assert word in text, f"{chart}.svg does not say '{word}': {text[:400]}"
            width, height = png_size(png)
            assert width >= 300 and height >= 150, f"{chart}.png is {width}x{height}"
            print(f"{chart}: svg {os.path.getsize(svg)} B, png {width}x{height}")
        print(f"bench/run.sh took {took:.0f} s")


if __name__ == "__main__":
    main()
