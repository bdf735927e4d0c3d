#!/usr/bin/env python3
"""ipnfs_watch: watch an ipnfs network in framed mode, one line per record.

    ipnfs_watch.py /mnt/ipn/lan                   # a fresh port (clone), forever
    ipnfs_watch.py /mnt/ipn/lan --port 3 --count 10
    ipnfs_watch.py /mnt/ipn/lan --send 'hello' --count 5
    ipnfs_watch.py /mnt/ipn/lan --creds          # also: who sent each message

It opens a port file of the network (default: clone, which connects to the
lowest free port) in framed mode with membership events, optionally sends one
message, and prints each record it receives:

    seq=7 kind=join port=3
    seq=8 kind=counts port=3 receivers=2 senders=1
    seq=9 kind=data port=3 len=5 data=hello
    seq=12 kind=leave port=3

With --creds (IPNFS_IOC_SET_CREDS, like SO_PASSCRED), data records and joins
also say who wrote the message or opened the port, as the kernel told the
daemon (records no process wrote, such as a TAP's frames, say nothing):

    seq=7 kind=join port=3 uid=1000 gid=1000 pid=4242
    seq=9 kind=data port=3 len=5 data=hello uid=1000 gid=1000 pid=4242

It is a user of the ipnfs Python package (python/ipnfs in the source tree,
installed as a python3 module; docs/python.md), which holds the record format
and the ioctls of include/ipnfs.h.  Standard library otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

try:
    import ipnfs
except ImportError:  # run from the source tree: python/ next to tools/
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import ipnfs


def describe(record: ipnfs.Record) -> str:
    """The one line printed for a record."""
    kind = record.kind
    name = kind.name.lower() if isinstance(kind, ipnfs.Kind) else "unknown(%d)" % kind
    line = "seq=%d kind=%s port=%d" % (record.seq, name, record.port)
    if record.version != ipnfs.abi.FRAME_VERSION:
        line += " version=%d" % record.version
    if kind == ipnfs.Kind.DATA:
        text = record.payload.decode("utf-8", "backslashreplace")
        line += " len=%d data=%s" % (record.length, text.encode("unicode_escape").decode("ascii"))
    elif record.counts is not None:
        line += " receivers=%d senders=%d" % (record.counts.receivers, record.counts.senders)
    elif record.lost is not None:
        line += " lost=%d" % record.lost
    if record.node is not None:
        line += " node=%d" % record.node
    if record.truncated:
        line += " truncated"
    if record.creds is not None:
        c = record.creds
        line += " uid=%d gid=%d pid=%d" % (c.uid, c.gid, c.pid)
    return line


def port_name(port: str) -> Optional[str]:
    return None if port == "clone" else port


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the records an ipnfs port receives (framed mode, with events).")
    parser.add_argument("network", help="the network's directory, e.g. /mnt/ipn/lan")
    parser.add_argument("--port", default="clone",
                        help="clone (default), portN or N: the port file to open")
    parser.add_argument("--send", metavar="TEXT", help="send TEXT as one message first")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after this many records (default: never)")
    parser.add_argument("--no-events", action="store_true",
                        help="do not ask for join/leave/counts events")
    parser.add_argument("--creds", action="store_true",
                        help="print who sent each message and who opened each joining port")
    args = parser.parse_args(argv)

    path = ipnfs.port_path(args.network, port_name(args.port))
    try:
        port = ipnfs.Port(args.network, port_name(args.port), write=args.send is not None,
                          events=not args.no_events, creds=args.creds)
    except OSError as e:
        print("ipnfs_watch: %s: %s" % (path, e.strerror), file=sys.stderr)
        return 1
    with port:
        try:
            print("# %s: port %d" % (path, port.port), file=sys.stderr, flush=True)
            if args.send is not None:
                port.send(args.send.encode("utf-8"))
            seen = 0
            for record in port:  # until the network is removed
                print(describe(record), flush=True)
                seen += 1
                if seen == args.count:
                    break
            return 0
        except KeyboardInterrupt:
            return 130
        except OSError as e:
            print("ipnfs_watch: %s: %s" % (path, e.strerror), file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
