"""pytest-xdist: tests recording in parallel workers, two of them into one cassette, lose nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from llmcassette._storage import load_cassette

from .conftest import SUBPROCESS_ARGS

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]

# Both workers wait for each other at `meet` points: the shared cassette's two writers are then
# certainly open at once, and save at the same moment. A worker that waits alone fails the test.
_CONFTEST = """
import time
from pathlib import Path

SYNC = Path({sync!r})

def meet(point, me, other):
    (SYNC / f"{{point}}-{{me}}").touch()
    deadline = time.monotonic() + 20
    while not (SYNC / f"{{point}}-{{other}}").exists():
        assert time.monotonic() < deadline, f"{{other}} never reached {{point}}: the tests did not overlap"
        time.sleep(0.002)
"""

_MODULE = """
import httpx, pytest
from conftest import meet

URL = {url!r}
ME, OTHER = {me!r}, {other!r}

def ask(test, i):
    reply = httpx.post(f"{{URL}}/sse?n=30&split=pairs&gap_ms=0", json={{"worker": ME, "test": test, "i": i}})
    assert reply.text.endswith("data: [DONE]\\n\\n")
    echo = httpx.post(f"{{URL}}/json", json={{"worker": ME, "test": test, "i": i}}).json()["echo"]
    assert echo == {{"worker": ME, "test": test, "i": i}}

@pytest.mark.parametrize("n", [0, 1, 2])
@pytest.mark.llm_cassette
def test_own(n):
    ask("own", n)

@pytest.mark.llm_cassette("shared/chat.yaml")
def test_shared(llm_cassette):
    meet("start", ME, OTHER)  # both cassettes are open, neither file exists yet
    for i in range(3):
        ask("shared", i)
    meet("end", ME, OTHER)  # both save as the tests end
    assert len(llm_cassette.attempts) == 6
"""

SHARED = "shared/chat.yaml"


def _write_suite(pytester: pytest.Pytester, url: str) -> Path:
    sync = pytester.mkdir("sync")
    pytester.makeconftest(_CONFTEST.format(sync=str(sync)))
    pytester.makepyfile(
        test_a=_MODULE.format(url=url, me="a", other="b"), test_b=_MODULE.format(url=url, me="b", other="a")
    )
    return sync


def _bodies(path: Path) -> list[dict[str, object]]:
    # Every file must parse, as YAML and as a cassette, and give its requests' bodies.
    assert isinstance(yaml.safe_load(path.read_text()), dict)
    return [json.loads(interaction.request.content) for interaction in load_cassette(path).interactions]


def test_parallel_workers_record_without_losing_or_mixing_interactions(
    pytester: pytest.Pytester, run: Run, upstream: str
) -> None:
    sync = _write_suite(pytester, upstream)
    started = time.monotonic()
    # `loadfile` puts each module on its own worker, so the two shared tests run at once.
    result = pytester.runpytest_subprocess(
        *SUBPROCESS_ARGS, "-n", "2", "--dist", "loadfile", "--record-mode=once"
    )
    result.assert_outcomes(passed=8)
    assert time.monotonic() - started < 60
    assert sorted(p.name for p in sync.iterdir()) == ["end-a", "end-b", "start-a", "start-b"]

    shared = _bodies(pytester.path / SHARED)
    expected = [{"worker": w, "test": "shared", "i": i} for w in "ab" for i in range(3)]
    # Each writer's six interactions are all there, each one once, and a writer's own stay together
    # and in order: the file holds one test's block, then the other's.
    assert len(shared) == 12
    assert sorted(shared, key=json.dumps) == sorted(expected * 2, key=json.dumps)
    first, second = shared[:6], shared[6:]
    assert {body["worker"] for body in first} != {body["worker"] for body in second}
    for block in (first, second):
        assert len({body["worker"] for body in block}) == 1
        assert [body["i"] for body in block] == [0, 0, 1, 1, 2, 2]
    # The streamed answers kept their chunk boundaries.
    streams = [i.response.stream for i in load_cassette(pytester.path / SHARED).interactions[::2]]
    assert all(stream is not None and len(stream.chunks or []) > 10 for stream in streams)

    for worker in "ab":
        folder = pytester.path / "cassettes" / f"test_{worker}"
        assert sorted(p.name for p in folder.iterdir()) == [f"test_own[{n}].yaml" for n in range(3)]
        for n in range(3):
            body = {"worker": worker, "test": "own", "i": n}
            assert _bodies(folder / f"test_own[{n}].yaml") == [body, body]
    # No temporary file was left behind by an interrupted or clashing write.
    assert not list(pytester.path.rglob("*.tmp"))

    # Everything replays with the network blocked (in one process: every meeting point is passed).
    run("--block-network").assert_outcomes(passed=8)
