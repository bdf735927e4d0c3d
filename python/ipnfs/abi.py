"""include/ipnfs.h in Python: the constants, the structs and the ioctl numbers.

Everything here is the C header's binary interface, in host byte order (ipnfs
is local IPC).  tests/integration/python_test.cpp checks each value against
the header as the C compiler sees it.
"""

from __future__ import annotations

import struct
from typing import Final

FRAME_VERSION: Final = 1  # IPNFS_FRAME_VERSION

# enum ipnfs_kind
DATA: Final = 0
JOIN: Final = 1
LEAVE: Final = 2
COUNTS: Final = 3
LOST: Final = 4

# IPNFS_FLAG_*: read side
FLAG_TRUNCATED: Final = 0x1
FLAG_CREDS: Final = 0x2
FLAG_NODE: Final = 0x4

# enum ipnfs_to and IPNFS_FLAGS_TO: the address kind in a record's flags
TO_DEFAULT: Final = 0
TO_PORT: Final = 1
TO_ANYCAST: Final = 2
TO_MULTICAST: Final = 3
TO_BROADCAST: Final = 4
TO_SHIFT: Final = 8
TO_MASK: Final = 0xF00


def flags_to(to: int) -> int:
    """IPNFS_FLAGS_TO(to)."""
    return (to << TO_SHIFT) & TO_MASK


def flags_get_to(flags: int) -> int:
    """IPNFS_FLAGS_GET_TO(flags)."""
    return (flags & TO_MASK) >> TO_SHIFT


RECORD: Final = struct.Struct("=IHHIIQ")  # struct ipnfs_record: len kind version port flags seq
CREDS: Final = struct.Struct("=IIII")  # struct ipnfs_creds: pid uid gid pad
NODE: Final = struct.Struct("=II")  # struct ipnfs_node: node pad
COUNTS_STRUCT: Final = struct.Struct("=II")  # struct ipnfs_counts: receivers senders
LOST_STRUCT: Final = struct.Struct("=Q")  # the payload of IPNFS_LOST
PORT_CTL_LINE: Final = 256  # sizeof(struct ipnfs_port_ctl), a NUL-terminated line

RECORD_ALIGN: Final = 8  # IPNFS_RECORD_ALIGN


def record_size(length: int) -> int:
    """IPNFS_RECORD_SIZE(len): header and payload, padded to a multiple of 8."""
    return (RECORD.size + length + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1)


def extra_size(flags: int) -> int:
    """IPNFS_EXTRA_SIZE(flags): the credentials and node between header and payload."""
    return (CREDS.size if flags & FLAG_CREDS else 0) + (NODE.size if flags & FLAG_NODE else 0)


def record_full_size(length: int, flags: int) -> int:
    """IPNFS_RECORD_FULL_SIZE(&header): where the next record starts."""
    return extra_size(flags) + record_size(length)


# linux/ioctl.h (asm-generic, as on x86, arm and riscv): nr in bits 0-7, type
# in 8-15, size in 16-29, direction in 30-31.
_IOC_WRITE: Final = 1
_IOC_READ: Final = 2


def _ioc(direction: int, magic: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (magic << 8) | nr


def _iow(magic: int, nr: int, size: int) -> int:
    return _ioc(_IOC_WRITE, magic, nr, size)


def _ior(magic: int, nr: int, size: int) -> int:
    return _ioc(_IOC_READ, magic, nr, size)


_INT: Final = struct.calcsize("i")
_U32: Final = struct.calcsize("I")

IOC_MAGIC: Final = 0xE7
IOC_SET_FRAMED: Final = _iow(IOC_MAGIC, 1, _INT)
IOC_GET_PORT: Final = _ior(IOC_MAGIC, 2, _U32)
IOC_SET_EVENTS: Final = _iow(IOC_MAGIC, 3, _INT)
IOC_PORT_CTL: Final = _iow(IOC_MAGIC, 4, PORT_CTL_LINE)
IOC_NEXT_SIZE: Final = _ior(IOC_MAGIC, 5, _U32)
IOC_SET_CREDS: Final = _iow(IOC_MAGIC, 6, _INT)

# The largest message a network carries (ctl "mtu" goes up to 65535): a read
# buffer of this much payload never cuts one.
MAX_MESSAGE: Final = 65535
