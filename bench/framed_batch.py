#!/usr/bin/env python3
"""Plain vs framed throughput on one ipnfs network, measured in one run.

Usage: bench/framed_batch.py /mnt/ipn/NET [--plain N] [--framed N] [--batch B]

Sets the network lossless (queue 4096, pool 8192) so nothing is lost, then
moves 64-byte messages from port2 to port1 with one writer thread and one
reader thread: first one message per write()/read(), then framed, B records
per write() and 64 KiB reads.  Prints messages/s of both and their ratio;
absolute numbers drift between machines, the ratio is what to compare.
The network must have no open ports.
"""
import argparse
import fcntl
import os
import struct
import threading
import time

IOC_SET_FRAMED = 0x4004E701  # _IOW(0xE7, 1, int), see include/ipnfs.h
HEADER = struct.Struct("=IHHIIQ")  # struct ipnfs_record
PAYLOAD = 64
RECORD = (HEADER.size + PAYLOAD + 7) & ~7


def run(net, framed, total, batch):
    r = os.open(os.path.join(net, "port1"), os.O_RDONLY)
    w = os.open(os.path.join(net, "port2"), os.O_WRONLY)
    if framed:
        for fd in (r, w):
            fcntl.ioctl(fd, IOC_SET_FRAMED, struct.pack("i", 1))
        one = HEADER.pack(PAYLOAD, 0, 1, 0, 0, 0) + b"x" * PAYLOAD
        buf = one * batch
    else:
        buf = b"x" * PAYLOAD
    received = 0

    def reader():
        nonlocal received
        while received < total:
            got = os.read(r, 65536)
            received += len(got) // RECORD if framed else 1

    thread = threading.Thread(target=reader)
    thread.start()
    start = time.monotonic()
    sent = 0
    while sent < total:
        rest = buf
        while rest:  # a framed write may be short: whole records only
            n = os.write(w, rest)
            sent += n // RECORD if framed else 1
            rest = rest[n:]
    thread.join()
    elapsed = time.monotonic() - start
    os.close(r)
    os.close(w)
    return total / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("net")
    ap.add_argument("--plain", type=int, default=50000)
    ap.add_argument("--framed", type=int, default=500000)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    with open(os.path.join(args.net, "ctl"), "w") as ctl:
        ctl.write("lossless on\nqueue 4096\npool 8192\n")
    plain = run(args.net, False, args.plain, 1)
    framed = run(args.net, True, args.framed - args.framed % args.batch, args.batch)
    print(f"plain  {PAYLOAD} B, 1 per call:         {plain:12.0f} msg/s")
    print(f"framed {PAYLOAD} B, {args.batch} per write: {framed:12.0f} msg/s")
    print(f"ratio framed/plain: {framed / plain:.1f}x")


if __name__ == "__main__":
    main()
