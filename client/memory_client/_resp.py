"""Commands in RESP, the wire form: packed one by one, or from templates packed once with holes.

A transaction here sends about a dozen commands. Packing each afresh costs about a microsecond per command
even with hiredis' packer (redis-py's costs more than a loopback round trip of a small command), and most of
their arguments (key names, field names, the actor) never change between two appends of one conversation.
A `Template` packs those once; filling its holes is then a handful of byte joins whatever the command count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

import hiredis

__all__ = ["HOLE", "Arg", "Command", "Hole", "Packed", "Shape", "Template", "names", "pack"]

Arg = str | bytes | int
Command = tuple[Arg, ...]


def pack(commands: Iterable[Command]) -> bytes:
    """RESP-encode commands with hiredis' packer."""
    # hiredis' stub types the argument as a 1-tuple; it takes any number of str/bytes/int arguments.
    return b"".join([hiredis.pack_command(command) for command in commands])  # type: ignore[arg-type]


class Hole:
    """The type of `HOLE`."""

    def __repr__(self) -> str:
        return "HOLE"


HOLE: Final = Hole()  # an argument given when the template is filled
Shape = tuple[Arg | Hole, ...]  # a command, maybe with holes


def names(commands: Iterable[Shape]) -> tuple[str, ...]:
    """The commands' names, one per reply (for error messages)."""
    return tuple([str(command[0]) for command in commands])


class Packed(NamedTuple):
    """Commands already in RESP, and their names (one reply each; the names go into error messages)."""

    data: bytes
    names: tuple[str, ...]

    @classmethod
    def of(cls, commands: Sequence[Command]) -> Packed:
        return cls(pack(commands), names(commands))


_CACHED_PREFIXES: Final = 1024
_PREFIXES: Final = tuple([b"$%d\r\n" % n for n in range(_CACHED_PREFIXES)])  # a bulk string's header, by length


def _bulk(value: Arg) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


class Template:
    """Commands packed once, with `HOLE`s for the arguments given per use: `fill(*values)` returns what `pack`
    would for the commands with the holes replaced by the values, in order (tests hold the two to each other)."""

    __slots__ = ("_chunks", "holes", "names")

    def __init__(self, commands: Sequence[Shape]) -> None:
        chunks: list[bytes] = []
        chunk = b""
        for command in commands:
            chunk += b"*%d\r\n" % len(command)
            for arg in command:
                if isinstance(arg, Hole):
                    chunks.append(chunk)
                    chunk = b"\r\n"
                else:
                    chunk += _bulk(arg)
        chunks.append(chunk)
        self._chunks: Final = tuple(chunks)
        self.holes: Final = len(chunks) - 1
        self.names: Final = names(commands)

    def fill(self, *values: bytes) -> bytes:
        """The commands with these values (bytes: encode text and numbers first) in the holes, left to right."""
        if len(values) != self.holes:
            raise TypeError(f"the template has {self.holes} hole(s) to fill, {len(values)} value(s) given")
        chunks = self._chunks
        out = [chunks[0]]
        for value, chunk in zip(values, chunks[1:], strict=True):
            size = len(value)
            out += (_PREFIXES[size] if size < _CACHED_PREFIXES else b"$%d\r\n" % size, value, chunk)
        return b"".join(out)
