"""Where a framed record goes, for policies that take addresses (the group).

Each class is one IPNFS_TO_* of include/ipnfs.h; `fields()` gives the
(flags, port, seq) a written record carries for it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from . import abi

_U32_MAX = 0xFFFFFFFF


class To(enum.IntEnum):
    """The address kind a sender used (enum ipnfs_to); a read record's `to`."""

    DEFAULT = abi.TO_DEFAULT
    PORT = abi.TO_PORT
    ANYCAST = abi.TO_ANYCAST
    MULTICAST = abi.TO_MULTICAST
    BROADCAST = abi.TO_BROADCAST


def _check_u32(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U32_MAX:
        raise ValueError(f"{name} must be a whole number from 0 to {_U32_MAX}, not {value!r}")


@dataclass(frozen=True)
class Default:
    """The sending port's default destination (ctl "dest"; broadcast unless set)."""

    def fields(self) -> Tuple[int, int, int]:
        return abi.flags_to(abi.TO_DEFAULT), 0, 0


@dataclass(frozen=True)
class ToPort:
    """Unicast: the one port `port`; on a cluster network, of node `node` (0: this host)."""

    port: int
    node: int = 0

    def __post_init__(self) -> None:
        _check_u32("port", self.port)
        _check_u32("node", self.node)

    def fields(self) -> Tuple[int, int, int]:
        return abi.flags_to(abi.TO_PORT), self.port, self.node


@dataclass(frozen=True)
class Anycast:
    """One receiving port holding `instance` (ctl "member"), the least loaded."""

    instance: int

    def __post_init__(self) -> None:
        _check_u32("instance", self.instance)

    def fields(self) -> Tuple[int, int, int]:
        return abi.flags_to(abi.TO_ANYCAST), self.instance, 0


@dataclass(frozen=True)
class Multicast:
    """Every receiving port holding an instance from `lower` to `upper` (default: `lower`)."""

    lower: int
    upper: Optional[int] = None

    def __post_init__(self) -> None:
        _check_u32("lower", self.lower)
        if self.upper is not None:
            _check_u32("upper", self.upper)
            if self.upper < self.lower:
                raise ValueError(f"upper ({self.upper}) is below lower ({self.lower})")

    def fields(self) -> Tuple[int, int, int]:
        upper = self.lower if self.upper is None else self.upper
        return abi.flags_to(abi.TO_MULTICAST), self.lower, upper


@dataclass(frozen=True)
class Broadcast:
    """Every receiving port of the network."""

    def fields(self) -> Tuple[int, int, int]:
        return abi.flags_to(abi.TO_BROADCAST), 0, 0


Address = Union[Default, ToPort, Anycast, Multicast, Broadcast]
