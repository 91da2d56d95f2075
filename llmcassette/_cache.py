"""
The replay cache: what a cassette file was found to hold, kept so that the next run need not
read its YAML again.

The cassette file stays the only source of truth. An entry is derived from it and holds a copy of
the file's bytes: it is used only for a file equal to that copy, byte for byte, read and
validated by the exact code that produced it (the entry's name includes a fingerprint of
llmcassette's own code). A cassette edited by one byte, or a new llmcassette, finds no entry it
may use and reads the YAML. An entry is found by a hash of the file's size and of its first and
last 16 KiB, so that entering a cassette compares its bytes with the copy (memcmp, a block of
the file at a time) instead of hashing them all: files that differ only in between share a name,
and take turns in it. Entries hold plain data (``marshal``), each with a checksum (Adler-32); one
that is cut short, garbled or of another format is ignored and written again.

A cassette entered from its entry (:func:`find_entry`) is not read into memory: its bytes are
compared with the entry's copy as they are read, and the copy is what it is read from later, if
anything asks for its text (see :class:`FoundEntry`).

Entries live in one folder per user, never beside the cassettes, where they could be committed:
``$LLMCASSETTE_CACHE_DIR`` when set (empty turns the cache off), else
``$XDG_CACHE_HOME/llmcassette`` or ``~/.cache/llmcassette``; the folder holds a ``.gitignore`` of
its own. Writes go to a temporary file renamed over the entry, so parallel test workers
(pytest-xdist) that write the same entry leave one whole copy; none ever reads half of one.

The folder is kept under a size cap (``$LLMCASSETTE_CACHE_MAX_MB``, 512 MiB by default, 0 for
none): the entries used longest ago are removed when a write takes it over the cap, down to 80%
of it (see `evict`). Use is told by an entry's modification time, set anew when it is read, since
access times are not kept on file systems mounted ``noatime`` (and only coarsely under
``relatime``). Only names of this module's shape are ever removed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import math
import mmap
import os
import re
import secrets
import sys
import threading
import time
import warnings
import weakref
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .__version__ import __version__
from ._compiled import speedups

__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_MAX_MB_ENV",
    "DEFAULT_CACHE_MAX_MB",
    "MAX_CACHED_FILE_BYTES",
    "FoundEntry",
    "cache_dir",
    "cache_max_bytes",
    "entry_key",
    "evict",
    "find_entry",
    "read_entry",
    "write_entry",
]

#: The environment variable naming the cache folder; set to an empty string, it turns the cache off.
CACHE_DIR_ENV = "LLMCASSETTE_CACHE_DIR"

#: The environment variable capping the size of the cache folder's entries, in MiB (a decimal
#: number); 0 sets no cap.
CACHE_MAX_MB_ENV = "LLMCASSETTE_CACHE_MAX_MB"

#: The cap when `CACHE_MAX_MB_ENV` is not set: 16 of the largest entries there can be (a 16 MiB
#: cassette, at most about twice that as an entry), and the working set of several checkouts or
#: environments at once (each llmcassette's code has entries of its own), while most entries are
#: a few KB to 1 MB.
DEFAULT_CACHE_MAX_MB = 512

#: Files larger than this are not cached: an entry holds the bodies ready to play, and reading a
#: whole entry back would cost more memory than replaying the file piece by piece.
MAX_CACHED_FILE_BYTES = 16 * 1024 * 1024

# Bumped when the layout of an entry changes.
_FORMAT = b"LLMCC\x00\x05\x00"
_DIGEST_BYTES = 20
# An entry's name hashes this much of the start and of the end of its file (all of a smaller one).
_SAMPLE_BYTES = 16 * 1024
# After the format tag and the name: the payload's checksum, then its length.
_HEAD_BYTES = len(_FORMAT) + _DIGEST_BYTES + 4 + 8
# Entries from this size on are read through a map of the file (see `read_entry`).
_MAP_OVER = 256 * 1024
# A cassette is compared with an entry's copy of it this much at a time: a buffer that stays in
# the CPU's cache and is reused, where reading the file whole took fresh pages of memory (a 600
# KB file: 0.7 ms, against 0.1 to compare it a block at a time).
_BLOCK_BYTES = 64 * 1024
# Eviction removes entries until they hold no more than this share of the cap, so that the next
# few writes do not each scan the folder again.
_LOW_WATER = 0.8
# An entry read is marked used (its modification time set to now) when it was last marked longer
# ago than this: a cassette entered by a hundred tests costs one system call a minute, and the
# order of use is known to the minute, which is all eviction needs.
_MARK_USED_AFTER_S = 60.0
# A temporary file older than this is left over from a writer that died, and may be removed; a
# younger one may be a write in flight in another process.
_STALE_TEMP_S = 3600.0
# os.utime takes a descriptor on POSIX (1.2 us here, against 2.2 us by path), not on Windows.
_UTIME_TAKES_FD = os.utime in os.supports_fd
# At most this many entries stay mapped for the cassettes entered from them: a map holds a file
# descriptor (Python's mmap keeps a duplicate of the one it was made from), and a process that
# holds many cassettes at once (`serve`) must not run out of them. Beyond it, the entry mapped
# longest ago has its copy of the file read out of the map, which it then lets go.
_MOST_MAPS_HELD = 8


def cache_dir() -> Path | None:
    """The folder of cache entries, or None when the cache is turned off."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llmcassette"


@functools.cache
def _code_fingerprint() -> bytes:
    # Every module of the package, by size and modification time, and the versions of Python and
    # of the libraries that read and check a file: an entry written by other code (another
    # release, a working copy edited since, an upgraded PyYAML) is never used. Stat calls only,
    # so this costs well under a millisecond, once per process.
    import pydantic
    import yaml

    root = Path(__file__).resolve().parent
    versions = f"{__version__}\0{sys.version}\0{yaml.__version__}\0{pydantic.VERSION}\n"
    digest = hashlib.sha256(versions.encode())
    for path in sorted(root.rglob("*.py")):
        info = path.stat()
        digest.update(f"{path.relative_to(root)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.digest()[:_DIGEST_BYTES]


def entry_key(raw: bytes, *, checked: bool = True) -> str:
    """
    The name of the entry for a cassette file whose bytes are ``raw``: a hash of llmcassette's
    code, of whether the file was checked for being cut short (``checked``: a ``.json`` file is
    not, see :func:`llmcassette._storage.check_complete`), of its size, and of its first and
    last 16 KiB (the whole of a smaller file). Only a name: what makes an entry usable is the
    copy of the file it holds (see ``read_entry``).
    """
    # Hashing a file whole costs 14 µs per 26 KB stream (SHA-256 at 1.8 GB/s, the fastest real
    # content hash in hashlib here); comparing it with the entry's copy, about a tenth of that.
    with memoryview(raw) as view:
        if len(view) <= 2 * _SAMPLE_BYTES:
            return _key(len(view), view, b"", checked)
        return _key(len(view), view[:_SAMPLE_BYTES], view[-_SAMPLE_BYTES:], checked)


def _key(size: int, head: bytes | memoryview, tail: bytes | memoryview, checked: bool) -> str:
    # A file entered from its entry is not checked again (see `find_entry`): an entry made from
    # bytes that skipped the check for a file cut short (a `.json` name) is named apart, so that
    # the same bytes under a name that is checked never find it.
    digest = hashlib.sha256(_code_fingerprint())
    digest.update(b"checked\n" if checked else b"as they are\n")
    digest.update(size.to_bytes(8, "big"))
    digest.update(head)
    digest.update(tail)
    return digest.hexdigest()[: 2 * _DIGEST_BYTES]


def _checksum(payload: bytes | memoryview) -> int:
    # Adler-32: what tells a garbled entry from a whole one, at 1.6 times CRC-32's speed (a 3.6 MB
    # entry of streams: 1.0 ms against 1.6 ms, paid on every warm start). An entry is written
    # whole by this code (see `write_entry`), so the check is for damage on disk: Adler-32 finds
    # every changed byte, and random damage as CRC-32 does except in very short data; what it
    # can miss that CRC-32 cannot is a few patterned changes (bursts that cancel in its sums).
    fast = speedups()
    # (the C extension's, where it is built: the same value in a vector loop, 3.6 -> 1.0
    # instructions a byte, 90k -> 25k a 25 KB stream; `tests/test_speedups.py`)
    return zlib.adler32(payload) if fast is None else fast.adler32(payload)


class FoundEntry:
    """
    An entry :func:`find_entry` found for a cassette file: its name, its data, and the copy of the
    file it holds, which is what the file's bytes are read from while the entry is held.
    """

    def __init__(self, key: str, value: Any, data: bytes | mmap.mmap, start: int) -> None:
        self.key = key
        #: The data stored under ``key`` (see :func:`write_entry`).
        self.value = value
        # The entry, mapped or read whole, and where its copy of the file starts in it. A map
        # stays valid however the entry is replaced meanwhile: writers rename a whole new file
        # over it, which leaves the mapped one as it was.
        self._data = data
        self._start = start
        if isinstance(data, mmap.mmap):
            _hold_map(self)

    def source(self) -> bytes:
        """The cassette file's bytes, as they were when the entry was found (a copy each call)."""
        with _maps_lock:
            return self._data[self._start :]

    def _let_go(self) -> None:
        # (under `_maps_lock`) The copy of the file read out of the map, and the map closed.
        data = self._data
        if isinstance(data, mmap.mmap):
            self._data = data[self._start :]
            self._start = 0
            data.close()


# The entries held mapped, oldest first (see `_MOST_MAPS_HELD`); one let go by its cassette is
# closed with it, and its reference found dead here.
_maps_held: deque[weakref.ref[FoundEntry]] = deque()
_maps_lock = threading.Lock()


def _hold_map(entry: FoundEntry) -> None:
    with _maps_lock:
        live = [ref for ref in _maps_held if ref() is not None]
        _maps_held.clear()
        _maps_held.extend(live)
        while len(_maps_held) >= _MOST_MAPS_HELD:
            oldest = _maps_held.popleft()()
            if oldest is not None:
                oldest._let_go()
        _maps_held.append(weakref.ref(entry))


def find_entry(path: Path, *, checked: bool = True) -> FoundEntry | None:
    """
    The entry for the cassette file at ``path`` as it is now, or None when there is none that is
    whole, of this format, and made from those very bytes (or the file cannot be read: the
    caller reads it and reports why). The file is compared with the entry's copy a block at a
    time, never read into memory whole.
    """
    folder = cache_dir()
    if folder is None:
        return None
    try:
        with open(path, "rb", buffering=0) as source:
            size = os.fstat(source.fileno()).st_size
            if size > MAX_CACHED_FILE_BYTES:
                return None
            if size <= 2 * _SAMPLE_BYTES:
                head, tail = source.read(size), b""
            else:
                head = source.read(_SAMPLE_BYTES)
                source.seek(size - _SAMPLE_BYTES)
                tail = source.read(_SAMPLE_BYTES)
            key = _key(size, head, tail, checked)
            data = _open_entry(folder, key)
            if data is None:
                return None

            def same(copy: memoryview) -> bool:
                if len(copy) == len(head):  # (the file is no larger than its samples: read whole)
                    return head.startswith(copy)
                source.seek(0)
                return _same_bytes(source, copy)

            value = _unpack(key, data, size, same)
    except (OSError, ValueError):
        return None
    if value is None:
        if isinstance(data, mmap.mmap):
            data.close()
        return None
    return FoundEntry(key, value, data, len(data) - size)


def _same_bytes(source: Any, copy: memoryview) -> bool:
    # The rest of the file `source` (an unbuffered reader) holds `copy`, byte for byte, and no
    # more: read a block at a time into one buffer, each block compared where it lies (memcmp).
    # (The buffer is kept for the next comparison: a new one is 64 KiB of zeros written first.)
    buffer = _spare_buffers.pop() if _spare_buffers else bytearray(_BLOCK_BYTES)
    try:
        with memoryview(buffer) as block:
            done = 0
            while done < len(copy):
                count = source.readinto(block)
                if not count:
                    return False  # shorter than the copy
                with copy[done : done + count] as expected:
                    if len(expected) < count or not buffer.startswith(expected):
                        return False
                done += count
            return not source.read(1)  # and not longer
    finally:
        _spare_buffers.append(buffer)  # (pop and append are atomic: threads never share one)


_spare_buffers: list[bytearray] = []


def read_entry(key: str, source: bytes) -> Any | None:
    """
    The data stored under ``key`` for the file whose bytes are ``source``; None when there is
    none that is whole, of this format, and made from those very bytes.
    """
    folder = cache_dir()
    if folder is None:
        return None
    try:
        data = _open_entry(folder, key)
    except (OSError, ValueError):
        return None
    if data is None:
        return None
    try:
        # (compared where it lies: a slice would copy it, and a copy's fresh pages cost more
        # than the comparison)
        return _unpack(key, data, len(source), source.startswith)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _open_entry(folder: Path, key: str) -> bytes | mmap.mmap | None:
    try:
        handle = open(folder / f"{key}.entry", "rb")
    except FileNotFoundError:
        return None
    with handle:
        info = os.fstat(handle.fileno())
        size = info.st_size
        if time.time() - info.st_mtime >= _MARK_USED_AFTER_S:
            _mark_used(handle)
        # A large entry is read through a map of the file: its bytes are checked and unpacked
        # where they lie, not copied into a buffer first (a 3.6 MB entry: 4.3 -> 3.0 ms).
        # Safe because an entry is never changed in place: writers rename a whole new file
        # over it, which leaves the mapped one as it was.
        if size >= _MAP_OVER:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return handle.read()


def _unpack(key: str, data: bytes | mmap.mmap, size: int, same: Callable[[memoryview], bool]) -> Any | None:
    # The entry's data, when `data` is a whole entry of this format named `key` whose copy of
    # its file is `size` bytes long and `same` says is the file.
    if len(data) < _HEAD_BYTES or data[: len(_FORMAT)] != _FORMAT:
        return None
    if data[len(_FORMAT) : len(_FORMAT) + _DIGEST_BYTES] != bytes.fromhex(key):
        return None
    checksum = int.from_bytes(data[_HEAD_BYTES - 12 : _HEAD_BYTES - 8], "big")
    end = _HEAD_BYTES + int.from_bytes(data[_HEAD_BYTES - 8 : _HEAD_BYTES], "big")
    if len(data) != end + size:
        return None  # made from another file, or cut short
    with memoryview(data) as view:
        with view[end:] as copy:
            if not same(copy):
                return None  # made from another file of the same name
        with view[_HEAD_BYTES:end] as payload:
            try:
                if _checksum(payload) != checksum:
                    return None
                return marshal.loads(payload)
            except (EOFError, ValueError, TypeError):
                return None


def write_entry(key: str, value: Any, source: bytes) -> bool:
    """
    Store ``value`` (plain data only) under ``key``, for the file whose bytes are ``source`` (kept
    in the entry with it); False when it could not be stored.
    """
    folder = cache_dir()
    if folder is None:
        return False
    try:
        payload = marshal.dumps(value)
    except ValueError:  # a value marshal cannot hold (none the safe loader makes now)
        return False
    header = (
        _FORMAT + bytes.fromhex(key) + _checksum(payload).to_bytes(4, "big") + len(payload).to_bytes(8, "big")
    )
    tmp = folder / f".{key}.{secrets.token_hex(6)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            # A folder placed inside a repository (by $LLMCASSETTE_CACHE_DIR) is never committed.
            ignore.write_text("*\n")
        with open(tmp, "wb") as handle:
            handle.write(header)
            handle.write(payload)
            handle.write(source)
        os.replace(tmp, folder / f"{key}.entry")
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    _note_written(folder, len(header) + len(payload) + len(source))
    return True


# -- the size cap --------------------------------------------------------------------------------


def cache_max_bytes() -> int | None:
    """
    The cap on the bytes of the cache folder's entries, from ``$LLMCASSETTE_CACHE_MAX_MB``
    (MiB); None when there is none (the variable set to 0). A value that is not a number of MiB
    is warned about, once, and the default (`DEFAULT_CACHE_MAX_MB`) holds.
    """
    return _max_bytes(os.environ.get(CACHE_MAX_MB_ENV))


@functools.lru_cache(maxsize=16)
def _max_bytes(configured: str | None) -> int | None:
    # (cached per value: a bad one is warned about once per process, not on every write)
    megabytes = float(DEFAULT_CACHE_MAX_MB)
    if configured is not None and configured.strip():
        try:
            megabytes = float(configured)
        except ValueError:
            megabytes = math.nan
        if not (math.isfinite(megabytes) and megabytes >= 0):
            warnings.warn(
                f"llmcassette: ${CACHE_MAX_MB_ENV} is {configured!r}, which is not a size in MiB; set it "
                f"to a number such as {DEFAULT_CACHE_MAX_MB} (0 for no cap), or unset it. The replay cache "
                f"keeps to the default of {DEFAULT_CACHE_MAX_MB} MiB meanwhile.",
                UserWarning,
                stacklevel=1,
            )
            megabytes = float(DEFAULT_CACHE_MAX_MB)
    cap_bytes = megabytes * 1024 * 1024
    # (0 is no cap; so is a number of MiB too large to count in bytes, which no folder reaches)
    return None if megabytes == 0 or not math.isfinite(cap_bytes) else int(cap_bytes)


def _mark_used(handle: BinaryIO) -> None:
    # The modification time, not the access time: it is kept on every file system and mount
    # option, and nothing else changes it (an entry is never written in place).
    with contextlib.suppress(OSError):  # (a folder shared read-only: used, but not marked)
        os.utime(handle.fileno() if _UTIME_TAKES_FD else handle.name)


# Per folder, the bytes its entries held when this process last scanned it, and the bytes this
# process wrote to it since. The folder is scanned on a process's first write to it, and again
# when the two together pass the cap, or when the process has written a fifth of the cap since:
# parallel workers see each other's writes only by scanning, so between two scans each of them
# adds at most a fifth of the cap (and one entry), and the folder holds at most the cap and a
# fifth of it per worker. (A scan of a thousand entries costs 3.5 ms here.)
_scanned: dict[Path, tuple[int, int]] = {}


def _note_written(folder: Path, size: int) -> None:
    cap = cache_max_bytes()
    if cap is None:
        return
    scanned = _scanned.get(folder)
    if scanned is not None:
        found, since = scanned[0], scanned[1] + size
        if found + since <= cap and since <= cap - int(cap * _LOW_WATER):
            _scanned[folder] = (found, since)
            return
    _scanned[folder] = (evict(folder, max_bytes=cap), 0)


@functools.cache
def _names() -> tuple[re.Pattern[str], re.Pattern[str]]:
    # An entry, and a temporary file of `write_entry`'s: nothing else in the folder is touched.
    hex_key = f"[0-9a-f]{{{2 * _DIGEST_BYTES}}}"
    return re.compile(rf"{hex_key}\.entry"), re.compile(rf"\.{hex_key}\.[0-9a-f]{{12}}\.tmp")


def evict(folder: Path, *, max_bytes: int) -> int:
    """
    Keep the entries in ``folder`` within ``max_bytes``: when they hold more, remove those used
    longest ago until they hold at most 80% of it. Temporary files of writers that died (older
    than an hour) are removed too; no other file is touched. Returns the bytes the entries hold.

    Safe while other processes read, write and evict in the same folder: a file that vanishes
    is passed over, an entry used or written again since the scan is kept, and a reader that
    has an entry open or mapped when it is removed reads it whole (on POSIX); one that opens it
    after finds no entry, as for any other miss.
    """
    entry_name, temp_name = _names()
    now_s = time.time()
    entries: list[tuple[int, str, int]] = []
    total = 0
    try:
        with os.scandir(folder) as listing:
            for item in listing:
                try:
                    if entry_name.fullmatch(item.name):
                        if item.is_file(follow_symlinks=False):
                            info = item.stat(follow_symlinks=False)
                            entries.append((info.st_mtime_ns, item.path, info.st_size))
                            total += info.st_size
                    elif temp_name.fullmatch(item.name):
                        if now_s - item.stat(follow_symlinks=False).st_mtime > _STALE_TEMP_S:
                            os.unlink(item.path)
                except OSError:
                    continue  # removed or renamed by another process meanwhile
    except OSError:
        return 0  # no folder (yet), or one this process may not read
    if total <= max_bytes:
        return total
    entries.sort()  # used longest ago first (then by name, so ties go in a fixed order)
    low_water = int(max_bytes * _LOW_WATER)
    for mtime_ns, path, size in entries:
        if total <= low_water:
            break
        try:
            if os.stat(path, follow_symlinks=False).st_mtime_ns != mtime_ns:
                continue  # read (marked used) or written again since the scan: keep it
            os.unlink(path)
        except FileNotFoundError:
            pass  # removed by another process: gone all the same
        except OSError:
            continue  # not ours to remove (a folder shared read-only)
        total -= size
    return total
