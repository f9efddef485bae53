"""A committed version's file: its bytes, then its metadata as JSON, then a 16-byte footer
(the metadata's length and a magic). One file, so a commit writes, fsyncs and renames one
file, and the rename that makes the bytes visible makes their metadata visible with them."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from storage_node.records import ObjectMeta

MAGIC = b"SGMETA01"
FOOTER = struct.Struct(">Q8s")
TAIL_READ = 4096  # one read takes a small version's whole trailer


class NoTrailer(ValueError):
    """The file does not end in a well-formed trailer for the bytes before it."""


class ShortFile(ValueError):
    """The file lacks some of the bytes its metadata states."""


def trailer(meta: ObjectMeta) -> bytes:
    """What follows a version's bytes in its file."""
    encoded = meta.to_json()
    return encoded + FOOTER.pack(len(encoded), MAGIC)


def read_meta(fd: int) -> ObjectMeta:
    """The metadata at the end of an open version file; NoTrailer if it is not there whole."""
    file_size = os.fstat(fd).st_size
    tail = os.pread(fd, min(file_size, TAIL_READ), max(0, file_size - TAIL_READ))
    length = _meta_length(tail, file_size)
    if length + FOOTER.size > len(tail):
        tail = os.pread(fd, length + FOOTER.size, file_size - length - FOOTER.size)
    try:
        meta = ObjectMeta.from_json(tail[-FOOTER.size - length : -FOOTER.size])
    except (ValueError, TypeError) as exc:
        raise NoTrailer(f"unreadable metadata: {exc}") from None
    if meta.size + length + FOOTER.size != file_size:
        raise NoTrailer(f"{file_size} bytes cannot hold {meta.size} and its trailer")
    return meta


def body_size_at(path: str | os.PathLike[str]) -> int:
    """How many of the file's bytes are the version's, from its footer alone."""
    fd = os.open(path, os.O_RDONLY)
    try:
        file_size = os.fstat(fd).st_size
        footer = os.pread(fd, FOOTER.size, max(0, file_size - FOOTER.size))
    finally:
        os.close(fd)
    return file_size - _meta_length(footer, file_size) - FOOTER.size


def _meta_length(tail: bytes, file_size: int) -> int:
    """The metadata's length, from a tail of the file that ends with the footer."""
    if len(tail) < FOOTER.size:
        raise NoTrailer("too short to hold a trailer")
    length, magic = FOOTER.unpack(tail[-FOOTER.size :])
    if magic != MAGIC or length + FOOTER.size > file_size:
        raise NoTrailer("no trailer at the end")
    return int(length)


def read_meta_at(path: str | os.PathLike[str]) -> ObjectMeta:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_meta(fd)
    finally:
        os.close(fd)


def put_trailer(path: Path, meta: ObjectMeta, *, fsync: bool) -> None:
    """End the file at `meta.size` bytes, then append the trailer, durably. Run again after a
    crash part-way, it cuts off the half-written trailer first. A file shorter than `meta.size`
    is refused (ShortFile) rather than padded."""
    with path.open("r+b") as fh:
        if os.fstat(fh.fileno()).st_size < meta.size:
            raise ShortFile(f"{path} holds fewer than the {meta.size} bytes its metadata states")
        fh.truncate(meta.size)
        fh.seek(meta.size)
        fh.write(trailer(meta))
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
