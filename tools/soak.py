#!/usr/bin/env python3
"""Soak: mixed traffic on a real ipnfs mount for a while, reporting the
daemon's memory, CPU and each network's loss over time.  Not part of CI.

  tools/soak.py [--seconds 600] [--interval 10] [--binary build-test/daemon/ipnfs]

Networks: `lossy` (a hub: 4 writers, 3 readers and one that reads slowly, so
it drops), `lossless` (a lossless hub: 2 writers, 2 readers checking that
every message of every writer arrives in order), `group` (anycast to three
members).  Writers and readers open and close their ports now and then, so
connects, disconnects and discarded queues are part of the load.  Exits 1 if
the lossless network lost or reordered anything, or the daemon died.
"""
import argparse
import errno
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ctl(mnt, net, line):
    with open(f"{mnt}/{net}/ctl", "w") as f:
        f.write(line + "\n")


def stats(mnt, net):
    out = {}
    with open(f"{mnt}/{net}/stats") as f:
        for line in f:
            if not line.strip():
                break
            key, _, value = line.strip().partition(" ")
            out[key] = value
    return out


def proc_stat(pid):
    """(RSS in KiB, CPU seconds) of a process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


class Traffic:
    def __init__(self, mnt, deadline):
        self.mnt, self.deadline = mnt, deadline
        self.errors = []
        self.lock = threading.Lock()
        self.threads = []

    def spawn(self, fn, *args):
        t = threading.Thread(target=self.guard, args=(fn, *args), daemon=True)
        t.start()
        self.threads.append(t)

    def guard(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a soak reports, it does not stop
            with self.lock:
                self.errors.append(f"{fn.__name__}{args}: {e!r}")

    def writer(self, net, port, rate):
        n = 0
        while time.time() < self.deadline:
            # Reconnect now and then: connects and disconnects under load.
            with open(f"{self.mnt}/{net}/port{port}", "wb", buffering=0) as f:
                for _ in range(random.randint(100, 1000)):
                    if time.time() >= self.deadline:
                        return
                    try:
                        f.write(f"{port} {n} ".encode() + b"x" * random.randint(0, 1000))
                    except OSError as e:
                        # The group while every member is between two opens:
                        # refused, and counted in its stats as unreachable.
                        if e.errno != errno.EHOSTUNREACH:
                            raise
                    n += 1
                    time.sleep(1 / rate)

    def reader(self, net, port, delay=0.0):
        while time.time() < self.deadline:
            fd = os.open(f"{self.mnt}/{net}/port{port}", os.O_RDONLY | os.O_NONBLOCK)
            try:
                for _ in range(random.randint(1000, 5000)):
                    if time.time() >= self.deadline:
                        return
                    try:
                        os.read(fd, 65536)
                    except BlockingIOError:
                        time.sleep(0.002)
                    if delay:
                        time.sleep(delay)
            finally:
                os.close(fd)

    def checker(self, net, port):
        """Reads for the whole run; every writer's numbers must follow on."""
        last = {}
        with open(f"{self.mnt}/{net}/port{port}", "rb", buffering=0) as f:
            fd = f.fileno()
            os.set_blocking(fd, False)
            while time.time() < self.deadline + 2:
                try:
                    msg = os.read(fd, 65536)
                except BlockingIOError:
                    time.sleep(0.002)
                    continue
                sender, seq = (int(x) for x in msg.split(b" ", 2)[:2])
                if seq != last.get(sender, -1) + 1:
                    with self.lock:
                        self.errors.append(
                            f"{net}/port{port}: from port {sender} got {seq} after "
                            f"{last.get(sender)}")
                last[sender] = seq


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build-test/daemon/ipnfs"))
    args = ap.parse_args()

    mnt = tempfile.mkdtemp(prefix="ipnfs-soak.")
    log = mnt + ".log"
    daemon = subprocess.Popen([args.binary, "none", mnt, "-f", "-o", f"log_file={log}"])
    for _ in range(100):
        if os.path.ismount(mnt):
            break
        time.sleep(0.05)
    else:
        sys.exit(f"soak: {args.binary} did not mount (see {log})")
    failed = False
    try:
        for net in ("lossy", "lossless", "group"):
            os.mkdir(f"{mnt}/{net}")
        ctl(mnt, "lossless", "lossless on")
        ctl(mnt, "group", "policy group")
        for port in (1, 2, 3):
            ctl(mnt, "group", f"member {port} 7")
        ctl(mnt, "group", "dest 0 anycast 7")

        deadline = time.time() + args.seconds
        t = Traffic(mnt, deadline)
        for port in range(4):
            t.spawn(t.writer, "lossy", port, 2000)
        for port in range(4, 7):
            t.spawn(t.reader, "lossy", port)
        t.spawn(t.reader, "lossy", 7, 0.01)  # slow: its queue overflows
        for port in (2, 3):
            t.spawn(t.checker, "lossless", port)
        for port in (0, 1):
            t.spawn(t.writer, "lossless", port, 1000)
        t.spawn(t.writer, "group", 0, 1000)
        for port in (1, 2, 3):
            t.spawn(t.reader, "group", port)

        start = time.time()
        _, cpu0 = proc_stat(daemon.pid)
        print(f"{'t_s':>6} {'rss_mib':>8} {'cpu_%':>6}  " +
              "  ".join(f"{n}: in/out/drops" for n in ("lossy", "lossless", "group")))
        while time.time() < deadline:
            time.sleep(min(args.interval, max(0, deadline - time.time())))
            if daemon.poll() is not None:
                print(f"soak: the daemon exited with {daemon.returncode}")
                failed = True
                break
            rss, cpu = proc_stat(daemon.pid)
            elapsed = time.time() - start
            cols = []
            for net in ("lossy", "lossless", "group"):
                s = stats(mnt, net)
                cols.append(f"{s['msgs_in']}/{s['msgs_out']}/{s['drops']}")
            print(f"{elapsed:6.0f} {rss / 1024:8.1f} {100 * (cpu - cpu0) / elapsed:6.1f}  " +
                  "  ".join(f"{c:>22}" for c in cols), flush=True)
        for th in t.threads:
            th.join(timeout=10)
        s = stats(mnt, "lossless")
        print(f"lossless: msgs_in {s['msgs_in']} drops {s['drops']}; errors: {len(t.errors)}")
        for e in t.errors[:20]:
            print("  " + e)
        failed = failed or bool(t.errors) or s["drops"] != "0"
    finally:
        subprocess.run(["fusermount3", "-u", mnt], check=False)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
        os.rmdir(mnt)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
