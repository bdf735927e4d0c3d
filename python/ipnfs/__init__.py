"""ipnfs: framed records, addresses, events and ioctls of ipnfs port files.

    import ipnfs
    with ipnfs.Port("/mnt/ipn/lan", events=True) as port:
        port.send(b"hello", to=ipnfs.Broadcast())
        for record in port:
            print(record.kind.name, record.port, record.payload)

The binary interface is include/ipnfs.h (ipnfs.abi in Python); the guide is
docs/python.md.  Standard library only.
"""

from __future__ import annotations

from . import abi
from .addresses import Address, Anycast, Broadcast, Default, Multicast, To, ToPort
from .port import Port, port_path
from .records import Counts, Creds, Kind, Record, decode, encode

__all__ = [
    "Address",
    "Anycast",
    "Broadcast",
    "Counts",
    "Creds",
    "Default",
    "Kind",
    "Multicast",
    "Port",
    "Record",
    "To",
    "ToPort",
    "abi",
    "decode",
    "encode",
    "port_path",
]
