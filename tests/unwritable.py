"""
Folders that really refuse writes, for root too (the tests may run as root, which permissions do
not stop): an immutable folder, and a small file system that fills up. Each skips, saying why,
where the system does not allow it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["locked", "small_disk"]


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """While active, no entry can be added to or removed from ``folder`` (files in it stay writable)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode:
        pytest.skip(
            "as root, only an immutable folder refuses new files, and `chattr +i` is not available here"
        )
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


@contextlib.contextmanager
def small_disk(folder: Path, size_kib: int = 64) -> Iterator[None]:
    """While active, ``folder`` is a file system of ``size_kib`` (a tmpfs), which can be filled."""
    folder.mkdir(exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)], capture_output=True
    )
    if mount.returncode:
        pytest.skip(f"a small file system cannot be mounted here: {mount.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
