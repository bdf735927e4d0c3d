#!/usr/bin/env python3
"""The side-by-side benchmark; bench/run.sh installs, builds and runs this.

Runs every contender under every load in one go, repetitions interleaved (the
whole matrix once, then again) so that drift on the machine hits every
contender alike, and prints medians as markdown tables.  Ratios between
contenders of one run are what count; absolute numbers drift.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = (64, 1400)
FANOUT = (1, 4, 16)
MODES = ("lossless", "lossy")
# ipnfs network settings for the fan-out loads: the same for plain and framed.
QUEUE = 256
POOL = 4096


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=check, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def proc_cpu(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def wait_for(pred, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pid_of_mount(mnt):
    """The FUSE daemon serving mnt: the process holding /dev/fuse whose command line names it."""
    out = sh(["pgrep", "-f", f" {mnt}( |$)"], check=False).stdout.split()
    if not out:
        raise RuntimeError(f"no daemon found for {mnt}")
    return int(out[0])


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.loadgen = os.path.join(self.build, "bench", "ipnfs-loadgen")
        self.nullfs = os.path.join(self.build, "bench", "ipnfs-nullfs")
        self.ipnfs = os.path.join(self.build, "daemon", "ipnfs")
        self.work = tempfile.mkdtemp(prefix="ipnfs-bench.")
        self.mounts = []
        self.pids = []  # daemons to stop at the end
        self.cell_id = 0
        self.has_vde = shutil.which("vde_switch") is not None and self.loadgen_has("vde_open")
        self.has_zmq = self.loadgen_has("zmq_socket")
        self.has_uring = self.loadgen_has("io_uring_queue_init")
        self.has_iperf = shutil.which("iperf3") is not None

    def loadgen_has(self, symbol):
        """Whether the load generator was built with the library that has symbol."""
        return symbol.encode() in open(self.loadgen, "rb").read()

    # ------------------------------------------------------------ daemons

    def mount_ipnfs(self, name, binary=None):
        mnt = os.path.join(self.work, name)
        os.mkdir(mnt)
        # --ipnfs-options: this build's daemon only, not the baseline's.
        own = ["-o", self.args.ipnfs_options] if self.args.ipnfs_options and not binary else []
        sh([binary or self.ipnfs, "none", mnt, "-o", "log_level=warn"] + own + self.fuse_options())
        self.mounts.append(mnt)
        return mnt, pid_of_mount(mnt)

    def fuse_options(self):
        """libfuse options for both FUSE daemons alike (e.g. max_threads=2)."""
        return ["-o", self.args.fuse_options] if self.args.fuse_options else []

    def mount_nullfs(self):
        mnt = os.path.join(self.work, "null")
        os.mkdir(mnt)
        sh([self.nullfs, mnt] + self.fuse_options())
        self.mounts.append(mnt)
        wait_for(lambda: os.path.exists(os.path.join(mnt, "null")), "nullfs")
        return mnt, pid_of_mount(mnt)

    def vde_switch(self, name, hub):
        sock = os.path.join(self.work, name)
        pidfile = sock + ".pid"
        cmd = ["vde_switch", "-s", sock, "-d", "-p", pidfile, "-n", "64"]
        if hub:
            cmd.append("-x")
        sh(cmd, stdin=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, "vde_switch")
        pid = int(open(pidfile).read())
        self.pids.append(pid)
        return sock, pid

    def cleanup(self):
        for ns in ("ipnbA", "ipnbB"):
            sh(["ip", "netns", "del", ns], check=False)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for mnt in reversed(self.mounts):
            sh(["fusermount3", "-u", mnt], check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------ running

    def loadgen_run(self, scenario, kind, *opts, timeout=120):
        cmd = [self.loadgen, scenario, "--kind", kind] + [str(o) for o in opts]
        try:
            p = sh(cmd, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"  timed out: {' '.join(cmd)}")
            return None
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            r = None
        if p.returncode != 0 or r is None or "error" in r:
            log(f"  failed ({p.returncode}): {' '.join(cmd)}\n  {p.stderr.strip()}")
            return None
        return r

    def network(self, mnt, settings):
        self.cell_id += 1
        net = os.path.join(mnt, f"c{self.cell_id}")
        os.mkdir(net)
        write(os.path.join(net, "ctl"), "".join(line + "\n" for line in settings))
        return net


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- the loads


def ipnfs_daemons(b):
    """(contender prefix, mount, daemon pid): this build's daemon, and the
    baseline's (--baseline) right after it, so that each repetition runs the
    two back to back on the same load."""
    daemons = [("ipnfs", b.ipn, b.ipn_pid)]
    if b.args.baseline:
        daemons.append(("ipnfs-baseline", b.base, b.base_pid))
    return daemons


def fanout_cells(b):
    """(key, runner) for one sender to N receivers: every contender, size, mode."""
    cells = []
    secs = b.args.seconds
    for n in FANOUT:
        for size in SIZES:
            for mode in MODES:
                for framed in (False, True):
                    for prefix, mnt, pid in ipnfs_daemons(b):
                        name = f"{prefix} framed" if framed else f"{prefix} plain"

                        def run(n=n, size=size, mode=mode, framed=framed, mnt=mnt, pid=pid):
                            settings = [f"queue {QUEUE}"]
                            if mode == "lossless":
                                settings += ["lossless on", f"pool {POOL}"]
                            net = b.network(mnt, settings)
                            opts = ["--net", net, "--n", n, "--size", size, "--seconds", secs,
                                    "--pid", pid]
                            if framed:
                                opts.append("--framed")
                            r = b.loadgen_run("throughput", "ipnfs", *opts)
                            os.rmdir(net)
                            return r

                        cells.append(((n, size, name, mode), run))
                for kind, name in (("pipe", "pipes"), ("unix", "AF_UNIX dgram")):

                    def run(n=n, size=size, mode=mode, kind=kind):
                        opts = ["--n", n, "--size", size, "--seconds", secs]
                        if mode == "lossy":
                            opts.append("--lossy")
                        return b.loadgen_run("throughput", kind, *opts)

                    cells.append(((n, size, name, mode), run))
            if b.has_vde:
                cells.append(((n, size, "vde_switch hub", "lossy"),
                              lambda n=n, size=size: b.loadgen_run(
                                  "throughput", "vde", "--sock", b.vde_hub, "--n", n, "--size",
                                  size, "--seconds", secs, "--pid", b.vde_hub_pid)))
            cells.append(((n, size, "null FUSE", "-"),
                          lambda n=n, size=size: b.loadgen_run(
                              "throughput", "nullfs", "--file", b.null_file, "--n", n,
                              "--size", size, "--seconds", secs, "--pid", b.null_pid)))
    return [(key, run) for key, run in cells if wanted_contender(b, key[2])]


def wanted_contender(b, name):
    """--contenders: names are matched by their start ("ipnfs" takes in plain,
    framed and the baseline's)."""
    picked = [c.strip() for c in b.args.contenders.split(",") if c.strip()]
    return not picked or any(name.startswith(c) for c in picked)


def latency_cells(b):
    cells = []
    secs = b.args.latency_seconds
    rate = b.args.rate
    for n in FANOUT:

        def ipnfs(n=n):
            net = b.network(b.ipn, [f"queue {QUEUE}", "lossless on", f"pool {POOL}"])
            r = b.loadgen_run("latency", "ipnfs", "--net", net, "--n", n, "--seconds", secs,
                              "--rate", rate)
            os.rmdir(net)
            return r

        cells.append((("latency", n, "ipnfs plain"), ipnfs))
        for kind, name in (("pipe", "pipes"), ("unix", "AF_UNIX dgram")):
            cells.append((("latency", n, name),
                          lambda n=n, kind=kind: b.loadgen_run(
                              "latency", kind, "--n", n, "--seconds", secs, "--rate", rate)))
        if b.has_vde:
            cells.append((("latency", n, "vde_switch hub"),
                          lambda n=n: b.loadgen_run("latency", "vde", "--sock", b.vde_hub,
                                                    "--n", n, "--seconds", secs, "--rate",
                                                    rate)))
    cells.append((("latency", 1, "null FUSE"),
                  lambda: b.loadgen_run("latency", "nullfs", "--file", b.null_file,
                                        "--seconds", secs, "--rate", rate)))

    def ipnfs_pp():
        net = b.network(b.ipn, [f"queue {QUEUE}", "lossless on", f"pool {POOL}"])
        r = b.loadgen_run("pingpong", "ipnfs", "--net", net, "--seconds", secs)
        os.rmdir(net)
        return r

    cells.append((("pingpong", "ipnfs plain"), ipnfs_pp))
    for kind, name in (("pipe", "pipes"), ("unix", "AF_UNIX dgram")):
        cells.append((("pingpong", name),
                      lambda kind=kind: b.loadgen_run("pingpong", kind, "--seconds", secs)))
    if b.has_vde:
        cells.append((("pingpong", "vde_switch hub"),
                      lambda: b.loadgen_run("pingpong", "vde", "--sock", b.vde_hub,
                                            "--seconds", secs)))
    cells.append((("pingpong", "null FUSE"),
                  lambda: b.loadgen_run("pingpong", "nullfs", "--file", b.null_file,
                                        "--seconds", secs)))
    return cells


RECEIVERS = ("blocking", "epoll-lt", "epoll-et", "uring")
RECEIVER_LABEL = {"blocking": "blocking read()", "epoll-lt": "epoll, level-triggered",
                  "epoll-et": "epoll, edge-triggered", "uring": "io_uring read"}


def receiver_modes(b):
    """--receiver: the ways of waiting the receivers table compares."""
    modes = [m for m in b.args.receiver.split(",") if m]
    if "all" in modes:
        modes = list(RECEIVERS)
    if not b.has_uring and "uring" in modes:
        log("bench: the load generator was built without liburing: no io_uring receiver")
        modes.remove("uring")
    return modes


def receiver_cells(b):
    """N=1, 64 B: paced one-way latency and 1→1 throughput (lossless and
    lossy) for every contender under each --receiver mode; and back-to-back
    latency pairs of ipnfs against vde_switch under each epoll mode."""
    cells = []
    lat = ["--seconds", b.args.latency_seconds, "--rate", b.args.rate]
    thr = ["--size", 64, "--seconds", b.args.seconds]
    lossless = [f"queue {QUEUE}", "lossless on", f"pool {POOL}"]
    lossy = [f"queue {QUEUE}"]

    def ipnfs(scenario, mnt, settings, *opts):
        net = b.network(mnt, settings)
        r = b.loadgen_run(scenario, "ipnfs", "--net", net, *opts)
        os.rmdir(net)
        return r

    def zmq(scenario, *opts):
        b.cell_id += 1
        return b.loadgen_run(scenario, "zmq", "--ipc", os.path.join(b.work, f"z{b.cell_id}"),
                             *opts)

    for wait in receiver_modes(b):
        w = ["--receiver", wait]
        for prefix, mnt, pid in ipnfs_daemons(b):
            name = f"{prefix} plain"
            cells.append((("recv", wait, name, "latency"),
                          lambda mnt=mnt, w=w: ipnfs("latency", mnt, lossless, *lat, *w)))
            for mode, settings in (("lossless", lossless), ("lossy", lossy)):
                cells.append((("recv", wait, name, mode),
                              lambda mnt=mnt, w=w, settings=settings, pid=pid: ipnfs(
                                  "throughput", mnt, settings, *thr, *w, "--pid", pid)))
        for kind, name in (("pipe", "pipes"), ("unix", "AF_UNIX dgram")):
            cells.append((("recv", wait, name, "latency"),
                          lambda kind=kind, w=w: b.loadgen_run("latency", kind, *lat, *w)))
            for mode in ("lossless", "lossy"):
                extra = ["--lossy"] if mode == "lossy" else []
                cells.append((("recv", wait, name, mode),
                              lambda kind=kind, w=w, extra=extra: b.loadgen_run(
                                  "throughput", kind, *thr, *extra, *w)))
        if b.has_vde:
            vde = ["--sock", b.vde_hub]
            cells.append((("recv", wait, "vde_switch hub", "latency"),
                          lambda w=w: b.loadgen_run("latency", "vde", *vde, *lat, *w)))
            cells.append((("recv", wait, "vde_switch hub", "lossy"),
                          lambda w=w: b.loadgen_run("throughput", "vde", *vde, *thr, *w,
                                                    "--pid", b.vde_hub_pid)))
        # A ZeroMQ socket has no descriptor to read: no io_uring receiver.
        if b.has_zmq and wait != "uring":
            cells.append((("recv", wait, "ZeroMQ pub/sub", "latency"),
                          lambda w=w: zmq("latency", *lat, *w)))
            for mode in ("lossless", "lossy"):
                extra = ["--lossy"] if mode == "lossy" else []
                cells.append((("recv", wait, "ZeroMQ pub/sub", mode),
                              lambda w=w, extra=extra: zmq("throughput", *thr, *extra, *w)))
    cells = [(key, run) for key, run in cells if wanted_contender(b, key[2])]
    if b.has_vde:
        for wait in receiver_modes(b):
            if wait.startswith("epoll"):
                cells.append((("recvpair", wait), lambda wait=wait: latency_pairs(b, wait)))
    return cells


def latency_pairs(b, wait="blocking"):
    """ipnfs then vde_switch, N=1 paced latency, back to back b.args.pairs
    times: the ratios of each pair's p50 and p99."""
    p50, p99 = [], []
    for _ in range(b.args.pairs):
        net = b.network(b.ipn, [f"queue {QUEUE}", "lossless on", f"pool {POOL}"])
        ip = b.loadgen_run("latency", "ipnfs", "--net", net, "--seconds", 0.5, "--rate",
                           b.args.rate, "--receiver", wait)
        os.rmdir(net)
        vde = b.loadgen_run("latency", "vde", "--sock", b.vde_hub, "--seconds", 0.5,
                            "--rate", b.args.rate, "--receiver", wait)
        if ip and vde:
            p50.append(ip["p50_us"] / vde["p50_us"])
            p99.append(ip["p99_us"] / vde["p99_us"])
    return {"p50": p50, "p99": p99}


SCALE_SMALL_PORTS = 32
SCALE_LARGE_PORTS = 4096
SCALE_NETWORKS = 1000


def scale_run(b, large, learn):
    ports = SCALE_LARGE_PORTS if large else SCALE_SMALL_PORTS
    to = [1, ports // 3, 2 * ports // 3, ports - 1]
    settings = [f"ports {ports}", f"queue {QUEUE}", "lossless on", f"pool {POOL}",
                "policy switch" if learn else "policy hub"]
    before_kb = proc_kb(b.scale_pid, "VmRSS")
    if large:
        # 999 idle networks beside the one measured: a mount of 1000.
        idle = os.path.join(b.scale, "idle")
        for i in range(SCALE_NETWORKS - 1):
            os.mkdir(f"{idle}{i}")
    net = b.network(b.scale, settings)
    made_kb = proc_kb(b.scale_pid, "VmRSS") - before_kb
    opts = ["--net", net, "--to", ",".join(map(str, to)), "--size", 64, "--seconds",
            b.args.seconds, "--pid", b.scale_pid]
    if learn:
        opts.append("--learn")
    r = b.loadgen_run("throughput", "ipnfs", *opts)
    if r is not None:
        r["made_kb"] = made_kb
    os.rmdir(net)
    if large:
        for i in range(SCALE_NETWORKS - 1):
            os.rmdir(f"{idle}{i}")
    return r


def paired_cells(b):
    """Targets 2 and 3 compare two contenders at N=1, where one run swings
    with the machine's other load by a factor of two: here the two run back
    to back, several times, and each pair gives one ratio."""
    lossless = [f"queue {QUEUE}", "lossless on", f"pool {POOL}"]

    def floor_pairs():
        ratios = []
        for _ in range(b.args.pairs):
            net = b.network(b.ipn, lossless)
            ip = b.loadgen_run("throughput", "ipnfs", "--net", net, "--seconds", 0.4)
            os.rmdir(net)
            null = b.loadgen_run("throughput", "nullfs", "--file", b.null_file, "--seconds", 0.4)
            if ip and null:
                ratios.append(ip["rates"][0] / min(null["rates"][0], null["send_rate"]))
        return {"ratios": ratios}

    cells = [(("pair", "floor"), floor_pairs)]
    if b.has_vde:
        cells.append((("pair", "latency"), lambda: latency_pairs(b)))
    return cells


def paired(results, key, field):
    """Median and quartiles of the ratios of every pair of every repetition."""
    values = [v for r in results.get(key, []) if r for v in r[field]]
    if len(values) < 2:
        return None
    q = statistics.quantiles(values, n=4)
    return {"median": statistics.median(values), "q1": q[0], "q3": q[2], "n": len(values)}


def scale_cells(b):
    cells = []
    for learn in (True, False):
        for large in (False, True):
            cells.append((("scale", learn, large),
                          lambda learn=learn, large=large: scale_run(b, large, learn)))
    return cells


# ---------------------------------------------------------------- TAP


def netns(*cmd):
    return sh(["ip", "netns", "exec", *cmd])


def tap_pair_up(a, b):
    for ns, dev, addr in (("ipnbA", a, "10.77.0.1/24"), ("ipnbB", b, "10.77.0.2/24")):
        sh(["ip", "link", "set", dev, "netns", ns])
        sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
        sh(["ip", "-n", ns, "link", "set", dev, "up"])
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
    deadline = time.monotonic() + 10
    while sh(["ip", "netns", "exec", "ipnbA", "ping", "-c", "1", "-W", "1", "10.77.0.2"],
             check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the TAPs never reached each other")


def iperf(seconds, pids):
    """Mbit/s received over TCP from ns A to ns B, and the CPU the pids used meanwhile."""
    server = subprocess.Popen(["ip", "netns", "exec", "ipnbB", "iperf3", "-s", "-1", "-B",
                               "10.77.0.2"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    cpu0 = sum(proc_cpu(p) for p in pids)
    for p in pids:
        reset_hwm(p)
    t0 = time.monotonic()
    out = sh(["ip", "netns", "exec", "ipnbA", "iperf3", "-c", "10.77.0.2", "-t", str(seconds),
              "-J"], check=False)
    wall = time.monotonic() - t0
    cpu = sum(proc_cpu(p) for p in pids) - cpu0
    hwm = sum(proc_kb(p, "VmHWM") for p in pids)
    server.wait(timeout=10)
    try:
        d = json.loads(out.stdout)
        mbit = d["end"]["sum_received"]["bits_per_second"] / 1e6
        retr = d["end"]["sum_sent"].get("retransmits", 0)
    except (json.JSONDecodeError, KeyError):
        log(f"  iperf3 failed: {out.stderr.strip()} {out.stdout[-300:]}")
        return None
    return {"mbit": mbit, "retr": retr, "cpu_pct": 100 * cpu / wall, "hwm_kb": hwm}


def fresh_namespaces():
    for ns in ("ipnbA", "ipnbB"):
        sh(["ip", "netns", "del", ns], check=False)
        sh(["ip", "netns", "add", ns])


def tap_ipnfs(b, lossless):
    fresh_namespaces()
    settings = ["policy switch", "queue 1024"]
    if lossless:
        settings += ["lossless on", "pool 4096"]
    net = b.network(b.ipn, settings)
    write(os.path.join(net, "ctl"), "tap ipnbta\n")
    write(os.path.join(net, "ctl"), "tap ipnbtb\n")
    try:
        tap_pair_up("ipnbta", "ipnbtb")
        return iperf(b.args.tap_seconds, [b.ipn_pid])
    finally:
        for ns in ("ipnbA", "ipnbB"):
            sh(["ip", "netns", "del", ns], check=False)
        os.rmdir(net)


def tap_vde(b):
    fresh_namespaces()
    sock, sw = b.vde_switch(f"vdesw{b.cell_id}", hub=False)
    b.cell_id += 1
    plugs = []
    try:
        for tap in ("ipnbva", "ipnbvb"):
            pidfile = os.path.join(b.work, tap + ".pid")
            sh(["vde_plug2tap", "-s", sock, "-d", "-P", pidfile, tap], stdin=subprocess.DEVNULL)
            wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0,
                     "vde_plug2tap")
            plugs.append(int(open(pidfile).read()))
        wait_for(lambda: all(os.path.exists(f"/sys/class/net/{t}") for t in
                             ("ipnbva", "ipnbvb")), "vde_plug2tap's TAPs")
        tap_pair_up("ipnbva", "ipnbvb")
        return iperf(b.args.tap_seconds, [sw] + plugs)
    finally:
        for ns in ("ipnbA", "ipnbB"):
            sh(["ip", "netns", "del", ns], check=False)
        for pid in plugs + [sw]:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        b.pids.remove(sw)


def tap_cells(b):
    if not b.has_iperf:
        return []
    cells = [(("tap", "ipnfs switch, lossy"), lambda: tap_ipnfs(b, False)),
             (("tap", "ipnfs switch, lossless"), lambda: tap_ipnfs(b, True))]
    if b.has_vde:
        cells.append((("tap", "vde_switch + vde_plug2tap"), lambda: tap_vde(b)))
    return cells


# ---------------------------------------------------------------- memory


def memory(b):
    """In a daemon of its own: resident memory against N, then 8 of 16 readers stalled."""
    mnt, pid = b.mount_ipnfs("mem")
    size, queue = 1400, QUEUE
    lossless = [f"queue {queue}", "mtu 1514", "lossless on", f"pool {POOL}"]

    def run(settings, *opts, timeout=120):
        net = b.network(mnt, settings)
        r = b.loadgen_run(opts[0], "ipnfs", "--net", net, "--size", size, "--pid", pid,
                          *opts[1:], timeout=timeout)
        os.rmdir(net)
        return r

    # A first run with 16 readers leaves the daemon with the worker threads,
    # buffers and allocator arenas it keeps from then on: the fixed part.
    run(lossless, "throughput", "--framed", "--n", 16, "--seconds", 1)
    growth = {}
    for n in FANOUT:
        before = proc_kb(pid, "VmRSS")
        r = run(lossless, "throughput", "--framed", "--n", n, "--seconds", 1)
        growth[n] = None if r is None else {"before_kb": before, "peak_kb": r["hwm_kb"],
                                            "loss": r["sent"] * n - sum(r["counts"])}
    n, stalled = 16, 8
    base_kb = proc_kb(pid, "VmRSS")
    r = run([f"queue {queue}", "mtu 1514"], "stall", "--n", n, "--stalled", stalled,
            "--seconds", b.args.stall_seconds, timeout=b.args.stall_seconds + 60)
    sh(["fusermount3", "-u", mnt], check=False)
    b.mounts.remove(mnt)
    out = {"growth": growth, "queue": queue, "size": size}
    if r is not None:
        # Every port with a reader may hold `queue` messages of up to mtu
        # bytes, each with its header (the Message, 32 bytes) and malloc's 16.
        out["stall"] = {"base_kb": base_kb, "peak_kb": max(r["hwm_kb"], r["rss_max_kb"]),
                        "bound_kb": n * queue * (1514 + 48) / 1024, "n": n,
                        "stalled": stalled, "seconds": b.args.stall_seconds, "sent": r["sent"],
                        "delivered": sum(r["counts"]), "rss_series_kb": r["rss_kb"],
                        "queued": r.get("queued", -1)}
    return out


# ---------------------------------------------------------------- tables


def fmt_rate(v):
    if v is None:
        return "failed"
    return f"{v:,.0f}"


def fmt(v, spec=".1f", none="-"):
    return none if v is None else format(v, spec)


def summarize_fanout(results):
    """Medians per (n, size, contender, mode)."""
    out = {}
    for key, runs in results.items():
        if not (isinstance(key[0], int) and len(key) == 4):
            continue
        n, size, name, mode = key
        ok = [r for r in runs if r]
        if not ok:
            out[key] = None
            continue
        per = [statistics.median(r["rates"]) for r in ok]
        agg = [sum(r["rates"]) for r in ok]
        loss = [100 * (1 - sum(r["counts"]) / (r["sent"] * n)) if r["sent"] else 0 for r in ok]
        cpu = [100 * r["cpu_s"] / r["wall_s"] for r in ok]
        cpu_per = [cpu_per_msg(r) for r in ok]
        out[key] = {"per": median(per), "agg": median(agg), "loss": median(loss),
                    "cpu": median(cpu), "cpu_per": median(cpu_per),
                    "hwm": median([r["hwm_kb"] for r in ok]),
                    "send": median([r["send_rate"] for r in ok]), "runs": len(ok),
                    "loss_max": max(loss)}
    return out


CONTENDER_ORDER = ["ipnfs plain", "ipnfs-baseline plain", "ipnfs framed", "ipnfs-baseline framed",
                   "pipes", "AF_UNIX dgram", "vde_switch hub", "null FUSE"]
DAEMON = {"ipnfs plain": True, "ipnfs framed": True, "ipnfs-baseline plain": True,
          "ipnfs-baseline framed": True, "vde_switch hub": True, "null FUSE": True}


def mode_label(name, mode):
    if name == "null FUSE":
        return "n/a (carries nothing)"
    if name == "vde_switch hub":
        return "lossy (its only mode)"
    if name == "pipes":
        return "lossless: blocking write" if mode == "lossless" else "lossy: O_NONBLOCK, EAGAIN drops"
    if name == "AF_UNIX dgram":
        return "lossless: blocking send" if mode == "lossless" else "lossy: MSG_DONTWAIT drops"
    return mode


def fanout_table(summary):
    lines = ["| N | size | contender | mode | per-receiver msg/s | aggregate msg/s | loss % "
             "| daemon CPU % | daemon CPU µs/msg | daemon peak RSS MiB |",
             "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in FANOUT:
        for size in SIZES:
            for name in CONTENDER_ORDER:
                for mode in ("lossless", "lossy", "-"):
                    s = summary.get((n, size, name, mode), "absent")
                    if s == "absent":
                        continue
                    if s is None:
                        lines.append(f"| {n} | {size} | {name} | {mode_label(name, mode)} | "
                                     "failed | | | | | |")
                        continue
                    daemon = DAEMON.get(name, False)
                    loss = "n/a" if name == "null FUSE" else fmt(s["loss"], ".2f")
                    per = fmt_rate(s["per"])
                    if name == "null FUSE":
                        per += f" reads (writes {fmt_rate(s['send'])})"
                    lines.append(
                        f"| {n} | {size} | {name} | {mode_label(name, mode)} | {per} | "
                        f"{fmt_rate(s['agg'])} | {loss} | "
                        f"{fmt(s['cpu'], '.0f') if daemon else 'n/a (kernel)'} | "
                        f"{fmt(s['cpu_per'], '.2f') if daemon else '-'} | "
                        f"{fmt(s['hwm'] / 1024, '.1f') if daemon else '-'} |")
    return "\n".join(lines)


def cpu_per_msg(r):
    """The daemon's CPU time per delivered message of one run, in µs."""
    return 1e6 * r["cpu_s"] / max(1, sum(r["counts"]))


def baseline_table(results, fan):
    """This build against --baseline, load by load: the medians of each, and
    the median of the ratios of each repetition's pair (the two ran back to
    back, so a pair saw the same machine)."""
    rows = []
    for key, runs in results.items():
        if len(key) != 4:  # the receivers' loads (--only receivers) have their own table
            continue
        n, size, name, mode = key
        if not (isinstance(n, int) and name.startswith("ipnfs-baseline ")):
            continue
        kind = name.split()[-1]
        new_key = (n, size, f"ipnfs {kind}", mode)
        new, base = fan.get(new_key), fan.get((n, size, name, mode))
        if not new or not base:
            continue
        pairs = [(a, b) for a, b in zip(results.get(new_key, []), runs) if a and b]
        cpu = median([cpu_per_msg(a) / cpu_per_msg(b) for a, b in pairs if cpu_per_msg(b)])
        rate = median([statistics.median(a["rates"]) / statistics.median(b["rates"])
                       for a, b in pairs if statistics.median(b["rates"])])
        rows.append(((n, size, kind != "plain", mode != "lossless"),
                     f"| {n} | {size} | {kind} | {mode} | {fmt(new['cpu_per'], '.2f')} | "
                     f"{fmt(base['cpu_per'], '.2f')} | {fmt(cpu, '.2f')}× | "
                     f"{fmt_rate(new['per'])} | {fmt_rate(base['per'])} | {fmt(rate, '.2f')}× |"))
    return "\n".join(["| N | size | kind | mode | daemon CPU µs/msg | baseline µs/msg "
                      "| ratio (pairs) | per-receiver msg/s | baseline msg/s | ratio (pairs) |",
                      "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
                     + [row for _, row in sorted(rows)])


def lat_summary(results, key):
    ok = [r for r in results.get(key, []) if r]
    if not ok:
        return None
    return {"p50": median([r["p50_us"] for r in ok]), "p99": median([r["p99_us"] for r in ok])}


def latency_table(results):
    lines = ["| N | contender | one-way p50 µs | one-way p99 µs |", "| ---: | --- | ---: | ---: |"]
    for n in FANOUT:
        for name in CONTENDER_ORDER:
            s = lat_summary(results, ("latency", n, name))
            if ("latency", n, name) not in results:
                continue
            label = name + (" (one write + one read)" if name == "null FUSE" else "")
            lines.append(f"| {n} | {label} | {fmt(s and s['p50'])} | {fmt(s and s['p99'])} |")
    return "\n".join(lines)


def pingpong_table(results):
    lines = ["| contender | round trip p50 µs | round trip p99 µs |", "| --- | ---: | ---: |"]
    for name in CONTENDER_ORDER:
        if ("pingpong", name) not in results:
            continue
        s = lat_summary(results, ("pingpong", name))
        label = name + (" (two writes + two reads)" if name == "null FUSE" else "")
        lines.append(f"| {label} | {fmt(s and s['p50'])} | {fmt(s and s['p99'])} |")
    return "\n".join(lines)


RECEIVER_CONTENDERS = ["ipnfs plain", "ipnfs-baseline plain", "pipes", "AF_UNIX dgram",
                      "vde_switch hub", "ZeroMQ pub/sub"]


def receivers_table(results):
    """Per contender and way of waiting: one-way latency, 1→1 throughput and loss."""
    lines = ["| contender | receiver | one-way p50 µs | one-way p99 µs | lossless msg/s "
             "| lossy msg/s | lossy loss % | daemon CPU µs/msg, lossy |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    modes = [m for m in RECEIVERS if any(k[:2] == ("recv", m) for k in results)]
    for name in RECEIVER_CONTENDERS:
        for wait in modes:
            if not any(k[:3] == ("recv", wait, name) for k in results):
                continue
            lat = lat_summary(results, ("recv", wait, name, "latency"))
            cols = [fmt(lat and lat["p50"]), fmt(lat and lat["p99"], ".0f")]
            for mode in ("lossless", "lossy"):
                if ("recv", wait, name, mode) not in results:
                    cols += ["—"] * (3 if mode == "lossy" else 1)
                    continue
                ok = [r for r in results[("recv", wait, name, mode)] if r]
                cols.append(fmt_rate(median([r["rates"][0] for r in ok])) if ok else "failed")
                if mode == "lossy":
                    loss = [100 * (1 - r["counts"][0] / r["sent"]) for r in ok if r["sent"]]
                    cols.append(fmt(median(loss), ".2f"))
                    daemon = DAEMON.get(name, False) and ok
                    cols.append(fmt(median([cpu_per_msg(r) for r in ok]), ".2f") if daemon
                                else "-")
            lines.append(f"| {name} | {RECEIVER_LABEL[wait]} | " + " | ".join(cols) + " |")
    pairs = []
    for wait in RECEIVERS:
        p50 = paired(results, ("recvpair", wait), "p50")
        p99 = paired(results, ("recvpair", wait), "p99")
        if p50 and p99:
            pairs.append(f"| {RECEIVER_LABEL[wait]} | {p50['median']:.2f}× ({p50['q1']:.2f}–"
                         f"{p50['q3']:.2f}) | {p99['median']:.2f}× ({p99['q1']:.2f}–"
                         f"{p99['q3']:.2f}) | {p50['n']} |")
    if pairs:
        lines += ["", "Back-to-back pairs, N=1 one-way latency, ipnfs / vde_switch with the same "
                  "receiver (the median of the pairs' ratios, quartiles):", "",
                  "| receiver | p50 ipnfs / vde | p99 ipnfs / vde | pairs |",
                  "| --- | ---: | ---: | ---: |"] + pairs
    return "\n".join(lines)


def tap_summary(results):
    out = {}
    for key, runs in results.items():
        if key[0] != "tap":
            continue
        ok = [r for r in runs if r]
        out[key[1]] = None if not ok else {
            "mbit": median([r["mbit"] for r in ok]), "retr": median([r["retr"] for r in ok]),
            "cpu": median([r["cpu_pct"] for r in ok]),
            "hwm": median([r["hwm_kb"] for r in ok])}
    return out


def tap_table(summary):
    lines = ["| path | TCP Mbit/s | retransmits | CPU % (daemon / switch + plugs) | peak RSS MiB |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, s in summary.items():
        if s is None:
            lines.append(f"| {name} | failed | | | |")
        else:
            lines.append(f"| {name} | {s['mbit']:,.0f} | {s['retr']:.0f} | {s['cpu']:.0f} | "
                         f"{s['hwm'] / 1024:.1f} |")
    return "\n".join(lines)


def scale_summary(results):
    out = {}
    for key, runs in results.items():
        if key[0] != "scale":
            continue
        ok = [r for r in runs if r]
        if not ok:
            out[key[1:]] = None
            continue
        out[key[1:]] = {"per": median([scale_rate(r, key[1]) for r in ok]),
                        "cpu_per": median([1e6 * r["cpu_s"] / max(1, sum(r["counts"]))
                                           for r in ok]),
                        "stray": max(r["stray"] for r in ok),
                        "made_kb": max(r["made_kb"] for r in ok)}
    # The small and the large case of one repetition run back to back: the
    # ratio of each such pair drifts less than the ratio of the medians.
    for learn in (True, False):
        small = results.get(("scale", learn, False), [])
        large = results.get(("scale", learn, True), [])
        ratios = [scale_rate(a, learn) / scale_rate(z, learn) for a, z in zip(small, large)
                  if a and z and scale_rate(z, learn) > 0]
        if out.get((learn, True)) and ratios:
            out[(learn, True)]["pair_ratio"] = statistics.median(ratios)
            out[(learn, True)]["pairs"] = len(ratios)
    return out


def scale_rate(r, learn):
    return r["rates"][0] if learn else statistics.median(r["rates"])


def scale_table(summary):
    lines = ["| case | 32 ports, 1 network: msg/s per receiver | 4096 ports, 1000 networks: "
             "msg/s per receiver | cost ratio (large/small): of the medians, median of pairs "
             "| daemon CPU µs/msg small / large |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for learn, label in ((True, "switch, learned unicast (1 of 4 readers)"),
                         (False, "hub, broadcast to 4 readers")):
        small, large = summary.get((learn, False)), summary.get((learn, True))
        if not small or not large:
            lines.append(f"| {label} | failed | | | |")
            continue
        lines.append(f"| {label} | {fmt_rate(small['per'])} | {fmt_rate(large['per'])} | "
                     f"{small['per'] / large['per']:.2f}, {large.get('pair_ratio', 0):.2f} | "
                     f"{small['cpu_per']:.2f} / "
                     f"{large['cpu_per']:.2f} |")
    made = [s["made_kb"] for k, s in summary.items() if k[1] and s]
    if made:
        lines += ["", f"Making the large case (999 networks of 32 ports and one of 4096) took the "
                  f"daemon's RSS up by {max(made) / 1024:.1f} MiB the first time (later times "
                  "reuse what the allocator kept after the rmdirs)."]
    unicast = [s["stray"] for k, s in summary.items() if k[0] and s]
    if unicast:
        lines += ["", f"Data messages that reached the learned unicast's other readers: "
                  f"{max(unicast)}."]
    return "\n".join(lines)


def verdict(ok):
    return "**met**" if ok else "**missed**"


def targets_table(fan, results, tap, scale, mem):
    rows = ["| # | target | measured | verdict |", "| ---: | --- | --- | --- |"]

    def get(*k):
        return fan.get(k)

    ip = get(16, 1400, "ipnfs framed", "lossless")
    vde = get(16, 1400, "vde_switch hub", "lossy")
    if ip and vde:
        ratio = ip["per"] / vde["per"]
        rows.append(f"| 1 | 1→16, 1400 B, lossless, framed: per-receiver ≥ 2× vde_switch, zero "
                    f"loss | {ip['per']:,.0f} vs {vde['per']:,.0f} msg/s = {ratio:.2f}×, loss "
                    f"{ip['loss_max']:.2f} % (worst run) | {verdict(ratio >= 2 and ip['loss_max'] == 0)} |")
    ip = get(1, 64, "ipnfs plain", "lossless")
    null = get(1, 64, "null FUSE", "-")
    pair = paired(results, ("pair", "floor"), "ratios")
    if ip and null and pair:
        floor = min(null["per"], null["send"])
        rows.append(f"| 2 | 1→1, 64 B, plain: ≥ 80 % of the null FUSE write+read rate | "
                    f"back-to-back pairs: median {100 * pair['median']:.0f} % (quartiles "
                    f"{100 * pair['q1']:.0f}–{100 * pair['q3']:.0f} %, {pair['n']} pairs); table "
                    f"medians {ip['per']:,.0f} vs {floor:,.0f} msg/s = "
                    f"{100 * ip['per'] / floor:.0f} % | {verdict(pair['median'] >= 0.8)} |")
    ipl = lat_summary(results, ("latency", 1, "ipnfs plain"))
    vdel = lat_summary(results, ("latency", 1, "vde_switch hub"))
    p50 = paired(results, ("pair", "latency"), "p50")
    p99 = paired(results, ("pair", "latency"), "p99")
    if ipl and vdel and p50 and p99:
        rows.append(f"| 3 | 1→1 one-way latency p50 and p99 ≤ vde_switch | back-to-back pairs, "
                    f"ipnfs/vde: p50 {p50['median']:.2f}× ({p50['q1']:.2f}–{p50['q3']:.2f}), p99 "
                    f"{p99['median']:.2f}× ({p99['q1']:.2f}–{p99['q3']:.2f}), {p50['n']} pairs; "
                    f"table: p50 {ipl['p50']:.1f} vs {vdel['p50']:.1f} µs, p99 {ipl['p99']:.0f} vs "
                    f"{vdel['p99']:.0f} µs | "
                    f"{verdict(p50['median'] <= 1 and p99['median'] <= 1)} |")
    ipt = tap.get("ipnfs switch, lossy")
    vdet = tap.get("vde_switch + vde_plug2tap")
    if ipt and vdet:
        best = max(ipt["mbit"], (tap.get("ipnfs switch, lossless") or ipt)["mbit"])
        ratio = ipt["mbit"] / vdet["mbit"]
        rows.append(f"| 4 | TAP to TAP TCP through the switch ≥ 2× vde_switch + vde_plug2tap | "
                    f"lossy {ipt['mbit']:,.0f} vs {vdet['mbit']:,.0f} Mbit/s = {ratio:.2f}× "
                    f"(best ipnfs mode {best / vdet['mbit']:.2f}×) | {verdict(ratio >= 2)} |")
    if mem and all(mem["growth"].get(n) for n in (1, 16)) and mem.get("stall"):
        g = {n: v["peak_kb"] - v["before_kb"] for n, v in mem["growth"].items() if v}
        per_receiver = (g[16] - g[1]) / 15
        st = mem["stall"]
        grew = st["peak_kb"] - st["base_kb"]
        copies_kb = st["queued"] * mem["size"] / 1024  # what the queued copies would take
        within = st["peak_kb"] <= st["base_kb"] + st["bound_kb"]
        # Shared payloads add at most two sets of `queue` messages (the stalled
        # ports' one set and what the active ports hold); copies add one
        # message per queued copy.  Half the copies' size lies between.
        shared = grew < copies_kb / 2
        rows.append(f"| 5 | payloads never copied per recipient (RSS flat in N); 8 of 16 readers "
                    f"stalled {st['seconds']} s on a lossy network: RSS within queue bounds + fixed "
                    f"overhead | lossless framed 1400 B: RSS growth {per_receiver:,.0f} KiB per "
                    f"added receiver; stalled: {st['queued']:,} messages queued (copies would "
                    f"take {copies_kb / 1024:.1f} MiB), RSS grew {grew:,} KiB, peak "
                    f"{st['peak_kb'] / 1024:.1f} MiB ≤ fixed {st['base_kb'] / 1024:.1f} + queues "
                    f"{st['bound_kb'] / 1024:.1f} MiB | {verdict(shared and within)} |")
    parts = []
    ok = True
    for learn, label in ((True, "learned unicast"), (False, "hub to 4")):
        small, large = scale.get((learn, False)), scale.get((learn, True))
        if small and large and "pair_ratio" in large:
            r = large["pair_ratio"]
            ok = ok and r <= 1.2
            parts.append(f"{label} {r:.2f}× (medians {small['per'] / large['per']:.2f}×)")
        else:
            ok = False
    if parts:
        rows.append(f"| 6 | 4096 ports and 1000 networks cost ≤ 1.2× of 32 ports, 1 network | "
                    f"back-to-back pairs: {', '.join(parts)} | {verdict(ok)} |")
    return "\n".join(rows)


def machine():
    model, hypervisor = "?", ""
    for line in sh(["lscpu"]).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
        if line.startswith("Hypervisor vendor:"):
            hypervisor = line.split(":", 1)[1].strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    distro = "?"
    if os.path.exists("/etc/os-release"):
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    virt = sh(["systemd-detect-virt"], check=False).stdout.strip() if shutil.which(
        "systemd-detect-virt") else "?"
    load = os.getloadavg()
    return (f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB, {distro}, kernel "
            f"{platform.release()}, {hypervisor + ' guest' if hypervisor else 'no hypervisor'} "
            f"(systemd-detect-virt: {virt or 'none'}); load average at the start "
            f"{load[0]:.2f}")


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5, help="per throughput run")
    ap.add_argument("--latency-seconds", type=float, default=1.0)
    ap.add_argument("--rate", type=int, default=2000, help="paced sends per second")
    ap.add_argument("--tap-seconds", type=int, default=5)
    ap.add_argument("--stall-seconds", type=int, default=60)
    ap.add_argument("--pairs", type=int, default=3,
                    help="back-to-back pairs per repetition for targets 2 and 3")
    ap.add_argument("--out", default=None)
    ap.add_argument("--tables-from", default="", metavar="JSON",
                    help="make the tables again from a run's saved numbers, measuring nothing")
    ap.add_argument("--fuse-options", default="",
                    help="libfuse options for ipnfs and the null FUSE alike, e.g. max_threads=2")
    ap.add_argument("--only", default="",
                    help="comma list of: fanout,latency,paired,scale,tap,memory,receivers")
    ap.add_argument("--receiver", default="", metavar="MODE,...",
                    help="the receivers table: N=1 latency and throughput with receivers that "
                         "wait in blocking, epoll-lt, epoll-et, uring (or all); none by default")
    ap.add_argument("--baseline", default="", metavar="IPNFS",
                    help="another build's ipnfs daemon binary: contenders 'ipnfs-baseline plain' "
                         "and 'ipnfs-baseline framed' in the fan-out loads, each run right after "
                         "this build's on the same load")
    ap.add_argument("--ipnfs-options", default="", metavar="OPTS",
                    help="ipnfs -o options for this build's daemon alone, e.g. 'uring' (FUSE over "
                         "io_uring: the fuse module's enable_uring is then turned on for the run "
                         "and put back after)")
    ap.add_argument("--fanout", default="", metavar="N,...",
                    help="fan-out loads: receiver counts (default 1,4,16)")
    ap.add_argument("--sizes", default="", metavar="BYTES,...",
                    help="fan-out loads: message sizes (default 64,1400)")
    ap.add_argument("--modes", default="", metavar="MODE,...",
                    help="fan-out loads: lossless, lossy or both (the default)")
    ap.add_argument("--contenders", default="", metavar="NAME,...",
                    help="fan-out loads: only contenders whose name starts with one of these "
                         "(e.g. 'ipnfs' for plain, framed and the baseline)")
    args = ap.parse_args()
    if "uring" in args.ipnfs_options:
        param = "/sys/module/fuse/parameters/enable_uring"
        try:
            saved = open(param).read().strip()
            with open(param, "w") as f:
                f.write("Y")
        except OSError as e:
            sys.exit(f"bench: --ipnfs-options {args.ipnfs_options}: cannot turn on {param}: {e}")
        import atexit

        def restore():
            with open(param, "w") as f:
                f.write(saved)
        atexit.register(restore)
    global FANOUT, SIZES, MODES
    if args.fanout:
        FANOUT = tuple(int(n) for n in args.fanout.split(","))
    if args.sizes:
        SIZES = tuple(int(n) for n in args.sizes.split(","))
    if args.modes:
        MODES = tuple(args.modes.split(","))
        if not set(MODES) <= {"lossless", "lossy"}:
            sys.exit("bench: --modes takes lossless, lossy")
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
        if not os.access(args.baseline, os.X_OK):
            sys.exit(f"bench: --baseline {args.baseline}: not an executable")
    if os.geteuid() != 0 and not args.tables_from:
        sys.exit("bench: run as root (TAPs, network namespaces, /proc of the daemons)")
    out = args.out or os.path.join(args.build, "bench-results.md")
    only = set(filter(None, args.only.split(",")))
    want = lambda part: not only or part in only  # noqa: E731

    started = time.monotonic()
    typed = sys.argv[1:]
    if typed[:2] == ["--build", "build-bench"]:  # what run.sh adds by itself
        typed = typed[2:]
    options = f" libfuse options for both FUSE daemons: {args.fuse_options}." if \
        args.fuse_options else " Both FUSE daemons with their defaults (a worker per CPU)."
    header = [f"Machine: {machine()}",
              f"Command: `bench/run.sh{''.join(' ' + a for a in typed)}` — {args.reps} repetitions, "
              f"interleaved; medians; throughput runs {args.seconds} s, paced latency "
              f"{args.rate}/s for {args.latency_seconds} s, TAP {args.tap_seconds} s, "
              f"stall {args.stall_seconds} s.{options}"
              + (f" Baseline daemon: {args.baseline}." if args.baseline else "")]
    if args.tables_from:
        header, results, mem = load_results(args.tables_from)
    else:
        results, mem = measure(args, want, started)
    render(args, want, header, results, mem, out, started)


def measure(args, want, started):
    """Runs every load asked for; the results by cell and the memory runs."""
    b = Bench(args)
    try:
        b.ipn, b.ipn_pid = b.mount_ipnfs("ipn")
        if args.baseline:
            b.base, b.base_pid = b.mount_ipnfs("ipn-base", args.baseline)
        null_mnt, b.null_pid = b.mount_nullfs()
        b.null_file = os.path.join(null_mnt, "null")
        if b.has_vde:
            b.vde_hub, b.vde_hub_pid = b.vde_switch("vdehub", hub=True)
        else:
            log("bench: vde_switch or libvdeplug missing: the vde contender is left out")
        cells = []
        if want("fanout"):
            cells += fanout_cells(b)
        if want("latency"):
            cells += latency_cells(b)
        if want("paired"):
            cells += paired_cells(b)
        if want("scale"):
            # A daemon of its own: the memory of 1000 networks stays with the
            # process (the allocator keeps it), and would show in every other
            # run's RSS.
            b.scale, b.scale_pid = b.mount_ipnfs("scale")
            cells += scale_cells(b)
        if want("tap"):
            cells += tap_cells(b)
        if args.receiver and want("receivers"):
            cells += receiver_cells(b)
        results = {key: [] for key, _ in cells}
        for rep in range(args.reps):
            log(f"bench: repetition {rep + 1} of {args.reps}: {len(cells)} runs "
                f"({time.monotonic() - started:.0f} s so far)")
            for key, run in cells:
                try:
                    results[key].append(run())
                except Exception as e:  # one broken run must not lose the others
                    log(f"  {key}: {e}")
                    results[key].append(None)
        mem = None
        if want("memory"):
            log(f"bench: memory, {args.stall_seconds} s with 8 of 16 readers stalled")
            mem = memory(b)
    finally:
        b.cleanup()
    return results, mem


def save_results(path, header, results, mem):
    raw = {" / ".join(map(str, key)): runs for key, runs in results.items()}
    with open(path, "w") as f:
        json.dump({"header": header, "results": raw, "memory": mem}, f)


def load_results(path):
    """What save_results wrote: the tables can be made again from it."""
    def part(p):
        if p in ("True", "False"):
            return p == "True"
        return int(p) if p.isdigit() else p

    with open(path) as f:
        raw = json.load(f)
    results = {tuple(part(p) for p in key.split(" / ")): runs
               for key, runs in raw["results"].items()}
    mem = raw.get("memory")
    if mem:
        mem["growth"] = {int(n): v for n, v in mem["growth"].items()}
    return raw["header"], results, mem


def render(args, want, header, results, mem, out, started):
    fan = summarize_fanout(results)
    tap = tap_summary(results)
    scale = scale_summary(results)
    parts = ["## Machine and command", "", header[0], "", header[1], "",
             "## Targets", "", targets_table(fan, results, tap, scale, mem), ""]
    if want("fanout"):
        parts += ["## One sender to N receivers", "",
                  f"ipnfs networks: hub, queue {QUEUE}; lossless ones pool {POOL}. Plain: one "
                  "message per write()/read(); framed: 32 KiB of records per write, 64 KiB "
                  "reads. Pipes and AF_UNIX: the sender writes each message to each receiver's "
                  "own pipe/socket (default buffers). Daemon CPU: utime+stime of the daemon "
                  "over the run (100 % = one core); peak RSS: VmHWM, reset before each run.",
                  "", fanout_table(fan), ""]
        if args.baseline or any(k[2].startswith("ipnfs-baseline") for k in fan):
            parts += ["## This build against the baseline", "",
                      "The same loads on the baseline's daemon, each run right after this "
                      "build's. Ratios: this build / the baseline, the median over the "
                      "repetitions' pairs; a CPU ratio under 1 means this build spends less "
                      "per message.", "", baseline_table(results, fan), ""]
    if want("latency"):
        parts += ["## Latency", "",
                  f"One-way: {args.rate} paced 64-byte sends per second, each carrying its send "
                  "time; every receiver takes the difference on arrival (all receivers pooled). "
                  "ipnfs: lossless hub network.", "", latency_table(results), "",
                  "Ping-pong, N=1, 64 B: one message bounced between two endpoints.", "",
                  pingpong_table(results), ""]
    if any(k[0] == "recv" for k in results):
        parts += ["## Event-loop receivers", "",
                  f"N=1, 64 B, one contender at a time, with the receiver waiting as --receiver "
                  f"says: in read() (blocking), in epoll_wait() on a non-blocking descriptor "
                  f"(level-triggered: one read per wake-up; edge-triggered: reads until "
                  f"EAGAIN), or for one io_uring read at a time. Latency: {args.rate} paced "
                  f"sends per second for {args.latency_seconds} s, ipnfs lossless. Throughput: "
                  f"as fast as the sender goes for {args.seconds} s; ipnfs queue {QUEUE} (pool "
                  f"{POOL} lossless). ZeroMQ: XPUB/SUB over ipc, lossless with "
                  "ZMQ_XPUB_NODROP; its descriptor only signals, so both epoll modes read until "
                  "EAGAIN, and it has no io_uring read.", "", receivers_table(results), ""]
    if want("scale"):
        parts += ["## Scale", "",
                  "Plain 64-byte writes on a lossless network, readers on 4 ports spread over "
                  "the port range; the large case has 999 idle networks beside it in the same "
                  "mount (a daemon of its own). A learned unicast: the 4 readers first send a "
                  "frame each from their own MAC, then the sender addresses the first of them; "
                  "the others must get nothing.", "", scale_table(scale), ""]
    if want("tap"):
        parts += ["## TAP to TAP TCP", "",
                  f"iperf3, {args.tap_seconds} s, one TCP stream from namespace A to B, each "
                  "holding one TAP of the switch (MTU 1500).", "", tap_table(tap), ""]
    if mem:
        parts += ["## Memory", "",
                  "In a daemon of its own, after one warm-up run with 16 readers (which leaves it "
                  "with the worker threads and buffers it keeps). Lossless hub network, queue "
                  f"{mem['queue']}, pool {POOL}, framed 1400-byte messages, 1 s: the daemon's "
                  "RSS before the run and its peak (VmHWM) during it. The sender outruns the "
                  "readers, so every queue is full most of the time.", "",
                  "| N | RSS before MiB | peak MiB | growth KiB |", "| ---: | ---: | ---: | ---: |"]
        for n, v in mem["growth"].items():
            if v:
                parts.append(f"| {n} | {v['before_kb'] / 1024:.1f} | {v['peak_kb'] / 1024:.1f} | "
                             f"{v['peak_kb'] - v['before_kb']:,} |")
        st = mem.get("stall")
        if st:
            series = st["rss_series_kb"]
            step = max(1, len(series) // 12)
            parts += ["", f"Stalled readers: lossy hub network, queue {mem['queue']}, mtu 1514, "
                      f"{st['n']} readers of which {st['stalled']} never read, 1400-byte "
                      f"messages as fast as the sender goes for {st['seconds']} s "
                      f"({st['sent']:,} sent, {st['delivered']:,.0f} delivered; at the end "
                      f"{st['queued']:,} copies queued, the stalled ports' full queues). Fixed part: "
                      f"the daemon's RSS before the run, {st['base_kb'] / 1024:.1f} MiB. Queue "
                      f"bound: {st['n']} ports × {mem['queue']} × (1514 + 48) B = "
                      f"{st['bound_kb'] / 1024:.1f} MiB. Peak RSS: {st['peak_kb'] / 1024:.1f} "
                      "MiB.", "", "RSS over the run (MiB): " + ", ".join(
                          f"{kb / 1024:.1f}" for kb in series[::step]), ""]
    text = "\n".join(parts)
    print(text)
    with open(out, "w") as f:
        f.write(text)
    if not args.tables_from:
        # Every run's own numbers, for a closer look than medians give, and
        # to make the tables again (--tables-from).
        save_results(os.path.splitext(out)[0] + ".json", header, results, mem)
    log(f"bench: done in {time.monotonic() - started:.0f} s; tables in {out}")


if __name__ == "__main__":
    main()
