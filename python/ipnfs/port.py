"""A port of an ipnfs network: an open port file with its ioctls."""

from __future__ import annotations

import asyncio
import collections
import fcntl
import os
import struct
from typing import (
    AsyncIterator,
    Deque,
    Iterable,
    Iterator,
    Optional,
    Tuple,
    Union,
)

from . import abi
from .addresses import Address
from .records import Record, decode, encode

PathLike = Union[str, "os.PathLike[str]"]
Message = Union[bytes, Tuple[bytes, Optional[Address]]]

# Room a framed read needs besides the payload: header, credentials, node.
_OVERHEAD = abi.RECORD.size + abi.CREDS.size + abi.NODE.size


def port_path(network: PathLike, port: Union[int, str, None]) -> str:
    """The file to open: `clone` for None or "clone", else portN."""
    network = os.fspath(network)
    if port is None or port == "clone":
        return os.path.join(network, "clone")
    if isinstance(port, int):
        return os.path.join(network, f"port{port}")
    if port.startswith("port"):
        return os.path.join(network, port)
    return os.path.join(network, "port" + port)


class Port:
    """An open port file of a network: `Port("/mnt/ipn/lan", 3)` opens port3,
    `Port("/mnt/ipn/lan")` opens clone (the lowest free port).

    framed (default on): records with headers, addresses and events (recv,
    send); off: one plain message per read()/write().  events: the port also
    receives join/leave/counts events.  creds: records say who sent them.
    read/write: the access to open with (a reader needs read, a sender
    write).  blocking=False: recv/send raise BlockingIOError instead of
    waiting.  bufsize: the payload room of one read, which may return
    several records at once (a message bigger than it still comes whole:
    IPNFS_IOC_NEXT_SIZE sizes that read).

    A context manager; close() releases the port (its last close makes it
    leave the network)."""

    def __init__(
        self,
        network: PathLike,
        port: Union[int, str, None] = None,
        *,
        read: bool = True,
        write: bool = True,
        framed: bool = True,
        events: bool = False,
        creds: bool = False,
        blocking: bool = True,
        bufsize: int = abi.MAX_MESSAGE + 1,
    ) -> None:
        if not read and not write:
            raise ValueError("a port is opened for reading, writing or both")
        if bufsize < 1:
            raise ValueError("bufsize must be at least 1")
        access = os.O_RDWR if read and write else os.O_RDONLY if read else os.O_WRONLY
        self.path = port_path(network, port)
        self._fd = os.open(self.path, access | os.O_CLOEXEC | (0 if blocking else os.O_NONBLOCK))
        self._pending: Deque[Record] = collections.deque()
        self._bufsize = bufsize
        self._framed = False
        self._events = False
        self._creds = False
        self._port: Optional[int] = None
        try:
            if framed:
                self.framed = True
            if events:
                self.events = True
            if creds:
                self.creds = True
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    # ---- the descriptor ----

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("I/O on a closed port")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> "Port":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<ipnfs.Port {self.path} {state}>"

    @property
    def blocking(self) -> bool:
        return not fcntl.fcntl(self.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK

    def setblocking(self, blocking: bool) -> None:
        """As a socket's: False makes recv/send raise BlockingIOError rather than wait."""
        os.set_blocking(self.fileno(), blocking)

    # ---- the ioctls ----

    def _set(self, request: int, on: bool) -> None:
        fcntl.ioctl(self.fileno(), request, struct.pack("i", 1 if on else 0))

    @property
    def port(self) -> int:
        """The port number (IPNFS_IOC_GET_PORT): which one clone connected to."""
        if self._port is None:
            out = fcntl.ioctl(self.fileno(), abi.IOC_GET_PORT, bytes(4))
            self._port = struct.unpack("I", out)[0]
        return self._port

    @property
    def framed(self) -> bool:
        return self._framed

    @framed.setter
    def framed(self, on: bool) -> None:
        """IPNFS_IOC_SET_FRAMED: EBUSY (OSError) while a plain read's rest is kept."""
        self._set(abi.IOC_SET_FRAMED, on)
        self._framed = on

    @property
    def events(self) -> bool:
        return self._events

    @events.setter
    def events(self, on: bool) -> None:
        """IPNFS_IOC_SET_EVENTS: the port also receives membership events."""
        self._set(abi.IOC_SET_EVENTS, on)
        self._events = on

    @property
    def creds(self) -> bool:
        return self._creds

    @creds.setter
    def creds(self, on: bool) -> None:
        """IPNFS_IOC_SET_CREDS: records say who sent them (as SO_PASSCRED)."""
        self._set(abi.IOC_SET_CREDS, on)
        self._creds = on

    def port_ctl(self, line: str) -> None:
        """IPNFS_IOC_PORT_CTL: a ctl setting of this port, without its number
        ("member 7" runs "member PORT 7").  OSError with the command's errno
        (EPERM when the descriptor does not grant it)."""
        data = line.encode("utf-8")
        if b"\0" in data or len(data) >= abi.PORT_CTL_LINE:
            raise ValueError(f"a port ctl line is under {abi.PORT_CTL_LINE} bytes, without NUL")
        fcntl.ioctl(self.fileno(), abi.IOC_PORT_CTL, data.ljust(abi.PORT_CTL_LINE, b"\0"))

    def next_size(self) -> int:
        """IPNFS_IOC_NEXT_SIZE: the size of the next message (0: none waits)."""
        out = fcntl.ioctl(self.fileno(), abi.IOC_NEXT_SIZE, bytes(4))
        return int(struct.unpack("I", out)[0])

    # ---- framed I/O ----

    def send(self, data: bytes, to: Optional[Address] = None) -> None:
        """One message, to `to` (None: the port's default destination).
        OSError as write(2): EHOSTUNREACH (nobody holds the address),
        EMSGSIZE (over the MTU), BlockingIOError (non-blocking, no room)."""
        self._need_framed("send")
        os.write(self.fileno(), encode(data, to))

    def send_many(self, messages: Iterable[Message]) -> int:
        """Several messages in one write(2), each bytes or (bytes, address);
        returns how many the network took (a lossless network may take only
        the first ones: send the rest again)."""
        self._need_framed("send_many")
        records = [encode(m[0], m[1]) if isinstance(m, tuple) else encode(m) for m in messages]
        if not records:
            return 0
        written = os.write(self.fileno(), b"".join(records))
        taken = 0
        for record in records:
            if written < len(record):
                break
            written -= len(record)
            taken += 1
        return taken

    def recv(self) -> Record:
        """The next record (data or event), waiting for one unless
        non-blocking (then BlockingIOError).  EOFError once the network is
        removed.  One read(2) may bring several records: the next calls
        return them without a system call."""
        self._need_framed("recv")
        if not self._pending:
            self._pending.extend(decode(self._read_framed()))
        return self._pending.popleft()

    def _read_framed(self) -> bytes:
        # The buffer holds the waiting message whole, however big; ipnfs cuts
        # a record that does not fit and discards its rest.
        size = max(self._bufsize, self.next_size())
        buf = os.read(self.fileno(), _OVERHEAD + abi.record_size(size))
        if not buf:
            raise EOFError(f"{self.path}: the network was removed")
        return buf

    def __iter__(self) -> Iterator[Record]:
        """Records until the network is removed."""
        while True:
            try:
                yield self.recv()
            except EOFError:
                return

    # ---- plain I/O ----

    def read(self) -> bytes:
        """One plain message (framed off): b"" once the network is removed."""
        if self._framed:
            raise ValueError("read() is for plain mode: recv() returns framed records")
        return os.read(self.fileno(), max(self._bufsize, self.next_size()))

    def write(self, data: bytes) -> int:
        """One plain message (framed off) to the port's default destination."""
        if self._framed:
            raise ValueError("write() is for plain mode: send() writes framed records")
        return os.write(self.fileno(), data)

    def _need_framed(self, what: str) -> None:
        if not self._framed:
            raise ValueError(f"{what}() needs framed mode (Port(..., framed=True))")

    # ---- asyncio ----

    async def _wait(self, add: str, remove: str) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        getattr(loop, add)(fd, wake)
        try:
            await ready
        finally:
            getattr(loop, remove)(fd)

    async def recv_async(self) -> Record:
        """recv() for asyncio: waits with loop.add_reader, never blocking the
        loop (the descriptor is made non-blocking)."""
        self._need_framed("recv_async")
        if self.blocking:
            self.setblocking(False)
        while True:
            try:
                return self.recv()
            except BlockingIOError:
                await self._wait("add_reader", "remove_reader")

    async def send_async(self, data: bytes, to: Optional[Address] = None) -> None:
        """send() for asyncio: on a lossless network a full receiver holds the
        write back; this waits for room with loop.add_writer."""
        self._need_framed("send_async")
        if self.blocking:
            self.setblocking(False)
        while True:
            try:
                return self.send(data, to)
            except BlockingIOError:
                await self._wait("add_writer", "remove_writer")

    async def records(self) -> AsyncIterator[Record]:
        """`async for record in port.records()`: until the network is removed."""
        while True:
            try:
                yield await self.recv_async()
            except EOFError:
                return

    def __aiter__(self) -> AsyncIterator[Record]:
        return self.records()

