"""The change journal beside a saved index: one frame per article published, edited or removed.

Saving a whole index rewrites every vector (about 350 MB at 100k chunks: seconds). A change is instead
appended to ``<index>.journal`` as one frame holding the article and its vectors; readers load the base file
and replay the journal, and a reader that has loaded already replays only the frames added since.
``KnowledgeIndex.save`` writes a new base and so empties the journal (compaction).

Layout: ``MAGIC`` and the base file's generation (32 hex characters), then frames, each a fixed part
(header length, body length, CRC-32 of header and body), a JSON header and a body of raw float32 vectors.
A frame counts only when complete and its checksum matches: a crash in the middle of an append leaves a
torn tail that readers ignore and the next writer cuts off. A journal whose generation is not the base's
(left over from before a rebuild) is ignored.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"MESA-JOURNAL-1\n"
GENERATION_CHARS = 32
START = len(MAGIC) + GENERATION_CHARS  # offset of the first frame
_FRAME = struct.Struct("<IQI")  # header length, body length, CRC-32 of header + body


@dataclass
class Frame:
    """One recorded change: ``header`` says what changed, ``body`` holds its vectors."""

    header: dict
    body: bytes


def journal_path(index_path: Path) -> Path:
    """Where the journal of the index at ``index_path`` lives."""
    return Path(f"{index_path}.journal")


def read_frames(path: Path, generation: str, start: int = START) -> tuple[list[Frame], int]:
    """The complete frames from offset ``start`` on, and the offset where the valid part of the journal ends.

    No journal, or one written for another generation of the base file: no frames, end offset 0.
    """
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return [], 0
    with handle:
        if handle.read(START) != MAGIC + generation.encode("ascii"):
            return [], 0
        offset = max(start, START)
        handle.seek(offset)
        frames = []
        while True:
            fixed = handle.read(_FRAME.size)
            if len(fixed) < _FRAME.size:
                break
            header_length, body_length, checksum = _FRAME.unpack(fixed)
            header = handle.read(header_length)
            body = handle.read(body_length)
            if (len(header) < header_length or len(body) < body_length
                    or zlib.crc32(body, zlib.crc32(header)) != checksum):
                break  # a torn or damaged tail: everything before it stands
            frames.append(Frame(json.loads(header), body))
            offset += _FRAME.size + header_length + body_length
        return frames, offset


def append_frames(path: Path, generation: str, valid_end: int, frames: list[Frame]) -> int:
    """Write frames after offset ``valid_end`` (0: start a new journal for this generation), durably.

    Whatever lay beyond ``valid_end`` (a torn tail) is cut off first. If writing fails, the journal is cut
    back to ``valid_end`` so that no half-written change survives. Returns the new end offset.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+b") as handle:
        if valid_end < START:
            handle.truncate(0)
            handle.write(MAGIC + generation.encode("ascii"))
            valid_end = START
        handle.truncate(valid_end)
        handle.seek(valid_end)
        try:
            for frame in frames:
                header = json.dumps(frame.header, ensure_ascii=False).encode("utf-8")
                handle.write(_FRAME.pack(len(header), len(frame.body), zlib.crc32(frame.body, zlib.crc32(header))))
                handle.write(header)
                handle.write(frame.body)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            handle.truncate(valid_end)
            raise
        return handle.tell()
