"""Framed records: encoding what a write carries, decoding what a read returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterator, List, Optional, Union

from . import abi
from .addresses import Address, To


class Kind(enum.IntEnum):
    """What a record is (enum ipnfs_kind)."""

    DATA = abi.DATA
    JOIN = abi.JOIN
    LEAVE = abi.LEAVE
    COUNTS = abi.COUNTS
    LOST = abi.LOST


@dataclass(frozen=True)
class Creds:
    """Who wrote a message or opened a joining port (struct ipnfs_creds), as the
    kernel told the daemon: fsuid, fsgid and thread id (0 if not visible)."""

    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Counts:
    """How many ports have a reader and a writer (struct ipnfs_counts)."""

    receivers: int
    senders: int


@dataclass(frozen=True)
class Record:
    """One record a framed read returned.

    kind is a Kind, or the plain number of a kind this module does not know
    (a newer daemon's; its payload is kept as it came).  port: the sender
    (data) or the port that joined or left.  seq: the position in the
    network's total order.  to: the address kind the sender used.  creds: on
    a descriptor with creds on, for records a process wrote (data) or opened
    (join).  node: on a cluster network, the node of the port.  counts and
    lost: the decoded payload of COUNTS and LOST records."""

    kind: Union[Kind, int]
    port: int
    seq: int
    flags: int
    payload: bytes
    length: int
    version: int = abi.FRAME_VERSION
    creds: Optional[Creds] = None
    node: Optional[int] = None
    counts: Optional[Counts] = None
    lost: Optional[int] = None

    @property
    def truncated(self) -> bool:
        """The payload was cut to fit the read (length is the whole length)."""
        return bool(self.flags & abi.FLAG_TRUNCATED)

    @property
    def to(self) -> Union[To, int]:
        """The address kind the sender used (To.DEFAULT for events)."""
        value = abi.flags_get_to(self.flags)
        try:
            return To(value)
        except ValueError:
            return value

    @property
    def is_event(self) -> bool:
        return self.kind != Kind.DATA


def encode(payload: bytes, to: Optional[Address] = None) -> bytes:
    """One data record, as a framed write() takes it."""
    if not payload:
        raise ValueError("a message needs at least one byte (an empty one would read as end of file)")
    flags, port, seq = (0, 0, 0) if to is None else to.fields()
    header = abi.RECORD.pack(len(payload), abi.DATA, abi.FRAME_VERSION, port, flags, seq)
    padding = abi.record_size(len(payload)) - abi.RECORD.size - len(payload)
    return header + bytes(payload) + b"\0" * padding


def _kind(value: int) -> Union[Kind, int]:
    try:
        return Kind(value)
    except ValueError:
        return value


def decode(buf: Union[bytes, bytearray, memoryview]) -> Iterator[Record]:
    """The records of one framed read()'s bytes, in order."""
    view = memoryview(buf)
    at = 0
    while at + abi.RECORD.size <= len(view):
        length, kind, version, port, flags, seq = abi.RECORD.unpack_from(view, at)
        start = at + abi.RECORD.size
        creds = None
        node = None
        if flags & abi.FLAG_CREDS:
            pid, uid, gid, _ = abi.CREDS.unpack_from(view, start)
            creds = Creds(pid=pid, uid=uid, gid=gid)
            start += abi.CREDS.size
        if flags & abi.FLAG_NODE:
            node = abi.NODE.unpack_from(view, start)[0]
            start += abi.NODE.size
        present = length
        if flags & abi.FLAG_TRUNCATED:
            present = max(0, min(length, len(view) - start))
        payload = bytes(view[start : start + present])
        counts = None
        lost = None
        if kind == abi.COUNTS and len(payload) >= abi.COUNTS_STRUCT.size:
            counts = Counts(*abi.COUNTS_STRUCT.unpack_from(payload))
        elif kind == abi.LOST and len(payload) >= abi.LOST_STRUCT.size:
            lost = abi.LOST_STRUCT.unpack_from(payload)[0]
        yield Record(
            kind=_kind(kind),
            port=port,
            seq=seq,
            flags=flags,
            payload=payload,
            length=length,
            version=version,
            creds=creds,
            node=node,
            counts=counts,
            lost=lost,
        )
        if flags & abi.FLAG_TRUNCATED:
            return  # nothing follows a cut record in its read
        at += abi.record_full_size(length, flags)


def decode_all(buf: Union[bytes, bytearray, memoryview]) -> List[Record]:
    return list(decode(buf))
