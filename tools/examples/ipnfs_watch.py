#!/usr/bin/env python3
"""ipnfs_watch: watch an ipnfs network in framed mode, one line per record.

    ipnfs_watch.py /mnt/ipn/lan                   # a fresh port (clone), forever
    ipnfs_watch.py /mnt/ipn/lan --port 3 --count 10
    ipnfs_watch.py /mnt/ipn/lan --send 'hello' --count 5
    ipnfs_watch.py /mnt/ipn/lan --creds          # also: who sent each message

It opens a port file of the network (default: clone, which connects to the
lowest free port), switches the descriptor to framed mode and to membership
events with two ioctls, optionally sends one message, and prints each record
it receives:

    seq=7 kind=join port=3
    seq=8 kind=counts port=3 receivers=2 senders=1
    seq=9 kind=data port=3 len=5 data=hello
    seq=12 kind=leave port=3

With --creds (IPNFS_IOC_SET_CREDS, like SO_PASSCRED), data records and joins
also say who wrote the message or opened the port, as the kernel told the
daemon (records no process wrote, such as a TAP's frames, say nothing):

    seq=7 kind=join port=3 uid=1000 gid=1000 pid=4242
    seq=9 kind=data port=3 len=5 data=hello uid=1000 gid=1000 pid=4242

The record format, from include/ipnfs.h (all fields in host byte order):

    struct ipnfs_record {        struct format "=IHHIIQ" (24 bytes)
        uint32_t len;            payload bytes (before any truncation)
        uint16_t kind;           0 IPNFS_DATA, 1 IPNFS_JOIN, 2 IPNFS_LEAVE,
                                 3 IPNFS_COUNTS
        uint16_t version;        IPNFS_FRAME_VERSION = 1
        uint32_t port;           data: the sending port; join/leave: the port
                                 that connected/disconnected
        uint32_t flags;          IPNFS_FLAG_TRUNCATED = 0x1: the payload was
                                 cut to fit the read buffer;
                                 IPNFS_FLAG_CREDS = 0x2: credentials follow
        uint64_t seq;            position in the network's total order
    };

then, if flags has IPNFS_FLAG_CREDS (only on a descriptor that asked with
IPNFS_IOC_SET_CREDS),

    struct ipnfs_creds {         struct format "=IIII" (16 bytes)
        uint32_t pid;            the writing thread's id, 0 if the daemon
                                 cannot see it (another pid namespace)
        uint32_t uid, gid;       its fsuid and fsgid: the kernel's word
        uint32_t pad;
    };

followed by the payload and zero padding up to IPNFS_RECORD_SIZE(len), the
next multiple of 8 (the credentials, 16 bytes, keep that alignment).  A COUNTS payload is struct ipnfs_counts { uint32_t
receivers; uint32_t senders; } ("=II").  One read() returns as many whole
records as fit in the buffer; one write() may carry several records, each of
kind IPNFS_DATA, version 1, flags 0 (port and seq are ignored).

The ioctl numbers are the kernel's _IOW/_IOR encoding with magic 0xE7:

    IPNFS_IOC_SET_FRAMED = _IOW(0xE7, 1, int)       int 1 = framed
    IPNFS_IOC_GET_PORT   = _IOR(0xE7, 2, uint32_t)  the port of this descriptor
    IPNFS_IOC_SET_EVENTS = _IOW(0xE7, 3, int)       int 1 = also get events
    IPNFS_IOC_SET_CREDS  = _IOW(0xE7, 6, int)       int 1 = say who sent each

Standard library only.
"""

import argparse
import fcntl
import os
import struct
import sys

# ---- include/ipnfs.h, in Python ----

# linux/ioctl.h (asm-generic): nr in bits 0-7, type in 8-15, size in 16-29,
# direction in 30-31 (1 = write to the driver, 2 = read from it).
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction, magic, nr, size):
    return (direction << 30) | (size << 16) | (magic << 8) | nr


def _iow(magic, nr, size):
    return _ioc(_IOC_WRITE, magic, nr, size)


def _ior(magic, nr, size):
    return _ioc(_IOC_READ, magic, nr, size)


IPNFS_IOC_MAGIC = 0xE7
IPNFS_IOC_SET_FRAMED = _iow(IPNFS_IOC_MAGIC, 1, struct.calcsize("i"))
IPNFS_IOC_GET_PORT = _ior(IPNFS_IOC_MAGIC, 2, struct.calcsize("I"))
IPNFS_IOC_SET_EVENTS = _iow(IPNFS_IOC_MAGIC, 3, struct.calcsize("i"))
IPNFS_IOC_SET_CREDS = _iow(IPNFS_IOC_MAGIC, 6, struct.calcsize("i"))

IPNFS_FRAME_VERSION = 1
IPNFS_DATA, IPNFS_JOIN, IPNFS_LEAVE, IPNFS_COUNTS = 0, 1, 2, 3
IPNFS_FLAG_TRUNCATED = 0x1
IPNFS_FLAG_CREDS = 0x2
KIND_NAMES = {IPNFS_DATA: "data", IPNFS_JOIN: "join", IPNFS_LEAVE: "leave", IPNFS_COUNTS: "counts"}

RECORD = struct.Struct("=IHHIIQ")  # struct ipnfs_record
COUNTS = struct.Struct("=II")      # struct ipnfs_counts
CREDS = struct.Struct("=IIII")     # struct ipnfs_creds: pid, uid, gid, pad
RECORD_ALIGN = 8
assert RECORD.size == 24 and CREDS.size == 16


def record_size(length):
    """IPNFS_RECORD_SIZE(len): header + payload, rounded up to a multiple of 8."""
    return (RECORD.size + length + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1)


def encode(payload):
    """One data record, as a framed write() expects it."""
    header = RECORD.pack(len(payload), IPNFS_DATA, IPNFS_FRAME_VERSION, 0, 0, 0)
    record = header + payload
    return record + b"\0" * (record_size(len(payload)) - len(record))


def decode(buf):
    """Yields (header fields, payload, creds) for each record in one read()'s
    bytes; creds is (pid, uid, gid), or None if the record carries none."""
    at = 0
    while at + RECORD.size <= len(buf):
        length, kind, version, port, flags, seq = RECORD.unpack_from(buf, at)
        start = at + RECORD.size
        creds = None
        if flags & IPNFS_FLAG_CREDS:  # IPNFS_CREDS_SIZE(flags)
            creds = CREDS.unpack_from(buf, start)[:3]
            start += CREDS.size
        present = length
        if flags & IPNFS_FLAG_TRUNCATED:
            present = min(length, len(buf) - start)
        payload = bytes(buf[start:start + present])
        yield (length, kind, version, port, flags, seq), payload, creds
        at = start - RECORD.size + record_size(present)


# ---- the watcher ----

def describe(fields, payload, creds=None):
    """The one line printed for a record."""
    length, kind, version, port, flags, seq = fields
    name = KIND_NAMES.get(kind, "unknown(%d)" % kind)
    line = "seq=%d kind=%s port=%d" % (seq, name, port)
    if version != IPNFS_FRAME_VERSION:
        line += " version=%d" % version
    if kind == IPNFS_DATA:
        text = payload.decode("utf-8", "backslashreplace")
        line += " len=%d data=%s" % (length, text.encode("unicode_escape").decode("ascii"))
    elif kind == IPNFS_COUNTS and len(payload) >= COUNTS.size:
        receivers, senders = COUNTS.unpack_from(payload)
        line += " receivers=%d senders=%d" % (receivers, senders)
    if flags & IPNFS_FLAG_TRUNCATED:
        line += " truncated"
    if creds is not None:
        line += " uid=%d gid=%d pid=%d" % (creds[1], creds[2], creds[0])
    return line


def port_path(network, port):
    if port == "clone" or port.startswith("port"):
        return os.path.join(network, port)
    return os.path.join(network, "port" + port)


def main(argv=None):
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

    path = port_path(args.network, args.port)
    flags = os.O_RDWR if args.send is not None else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError as e:
        print("ipnfs_watch: %s: %s" % (path, e.strerror), file=sys.stderr)
        return 1
    try:
        fcntl.ioctl(fd, IPNFS_IOC_SET_FRAMED, struct.pack("i", 1))
        if not args.no_events:
            fcntl.ioctl(fd, IPNFS_IOC_SET_EVENTS, struct.pack("i", 1))
        if args.creds:
            fcntl.ioctl(fd, IPNFS_IOC_SET_CREDS, struct.pack("i", 1))
        port, = struct.unpack("I", fcntl.ioctl(fd, IPNFS_IOC_GET_PORT, bytes(4)))
        print("# %s: port %d" % (path, port), file=sys.stderr, flush=True)

        if args.send is not None:
            os.write(fd, encode(args.send.encode("utf-8")))

        seen = 0
        while args.count == 0 or seen < args.count:
            buf = os.read(fd, 65536)
            if not buf:  # the network was removed
                break
            for fields, payload, creds in decode(buf):
                print(describe(fields, payload, creds), flush=True)
                seen += 1
                if seen == args.count:
                    break
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        print("ipnfs_watch: %s: %s" % (path, e.strerror), file=sys.stderr)
        return 1
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
