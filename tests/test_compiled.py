"""The optional C extension is found where it was built, and is turned off when asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmcassette._compiled import PURE_PYTHON_ENV, speedups

ROOT = Path(__file__).resolve().parents[1]
#: Set by `make unit`: the run fails when the extension did not load (CI's machines compile it).
REQUIRE_ENV = "LLMCASSETTE_REQUIRE_SPEEDUPS"


@pytest.mark.skipif(not os.environ.get(REQUIRE_ENV), reason=f"{REQUIRE_ENV} is not set")
def test_the_extension_is_loaded_where_it_is_required() -> None:
    assert not os.environ.get(PURE_PYTHON_ENV), f"{REQUIRE_ENV} and {PURE_PYTHON_ENV} are both set"
    found = speedups()
    assert found is not None, "llmcassette._speedups did not load: was the editable install built?"
    assert Path(found.__file__).parent == ROOT / "llmcassette"  # type: ignore[attr-defined]


def test_pure_python_turns_it_off_and_the_reader_reads_alike(tmp_path: Path) -> None:
    script = (
        "import sys; from llmcassette import _compiled, _layout\n"
        "print(_compiled.speedups() is None)\n"
        "print(repr(_layout.read_layout(sys.stdin.buffer.read())))\n"
    )
    text = b"a:\n  b: |+\n    one\n\n      two\n  chunks: [1, 2]\n"
    outputs = []
    for value in ("1", ""):
        done = subprocess.run(
            [sys.executable, "-c", script],
            input=text,
            capture_output=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, PURE_PYTHON_ENV: value},
        )
        outputs.append(done.stdout.decode().splitlines())
    assert outputs[0][0] == "True"
    assert outputs[1][0] == str(speedups() is None and not os.environ.get(PURE_PYTHON_ENV))
    assert outputs[0][1] == outputs[1][1] == repr({"a": {"b": "one\n\n  two\n", "chunks": [1, 2]}})
