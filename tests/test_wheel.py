"""The wheel holds the library and nothing that would land beside it in a user's site-packages."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="the test extra installs hatchling to build the wheel")
    out = tmp_path_factory.mktemp("wheel")
    # The backend itself, not `pip wheel`: no build isolation, so nothing is fetched.
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--target", "wheel", "--directory", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_installs_only_the_llmcassette_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {top for top in top_level if not top.endswith(".dist-info")} == {"llmcassette"}
    assert not [name for name in names if name.startswith("examples/")]


def test_the_wheel_carries_what_the_library_reads_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "llmcassette/py.typed" in names
    assert "llmcassette/_demo/chat.yaml" in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    )
    assert b"llmcassette = llmcassette.pytest_plugin" in entry_points


@pytest.mark.skipif(not os.environ.get("LLMCASSETTE_REQUIRE_SPEEDUPS"), reason="the C extension is optional")
def test_the_wheel_carries_the_c_extension_and_is_tagged_for_this_platform(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert [
        name for name in names if name.startswith("llmcassette/_speedups.") and name.endswith((".so", ".pyd"))
    ]
    assert "llmcassette/_speedups.c" not in names  # (the sdist carries the source)
    assert not wheel.name.endswith("-none-any.whl")
