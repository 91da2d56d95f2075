"""
Installed, llmcassette costs a pytest run that uses none of it next to nothing: the plugin, the
package and the command line's help import none of the heavy libraries until a test asks.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import NO_PLUGIN_ARGS, PLUGIN_ARGS

pytest_plugins = ["pytester"]

# What a test that uses a cassette needs, and a run that uses none must not pay for.
HEAVY = ("pydantic", "pydantic_core", "httpx", "httpx2", "httpcore", "httpcore2", "vcr", "yaml")

_REPORT = (
    "import sys; print('loaded:', *sorted(name for name in sys.modules if name.split('.')[0] in {heavy!r}))"
)


def _heavy_loaded_by(statement: str) -> list[str]:
    code = f"{statement}\n{_REPORT.format(heavy=set(HEAVY))}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = result.stdout.splitlines()[-1]
    assert report.startswith("loaded:"), result.stdout
    return report.split()[1:]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("import llmcassette", id="package"),
        pytest.param("import llmcassette.pytest_plugin", id="pytest-plugin"),
        pytest.param(
            "from llmcassette.cli import cli\ntry:\n    cli.main(['--help'], standalone_mode=False)\n"
            "except SystemExit:\n    pass",
            id="cli-help",
        ),
    ],
)
def test_import_loads_nothing_heavy(statement: str) -> None:
    assert _heavy_loaded_by(statement) == []


def test_the_public_names_still_load_on_use() -> None:
    assert "pydantic" in _heavy_loaded_by("import llmcassette\nllmcassette.Interaction")


def _loaded_in_run(result: pytest.RunResult) -> list[str]:
    result.assert_outcomes(passed=2)
    # (the report may follow pytest's progress dot on its line)
    return next(line for line in result.outlines if "loaded:" in line).partition("loaded:")[2].split()


def test_a_run_that_uses_none_of_it_loads_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain=f"""
        import sys

        def test_plain():
            assert 1 + 1 == 2

        def test_report():
            heavy = {set(HEAVY)!r}
            print("loaded:", *sorted(m for m in sys.modules if m.split(".")[0] in heavy | {{"llmcassette"}}))
        """
    )
    quiet = ("-s", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    with_plugin = _loaded_in_run(pytester.runpytest_subprocess(*PLUGIN_ARGS, *quiet))
    without = _loaded_in_run(pytester.runpytest_subprocess(*NO_PLUGIN_ARGS, *quiet))
    # Other plugins may load some of these themselves (pytest-recording 0.13 imports vcrpy, and
    # vcrpy httpx): the plugin adds none, and of itself only what registers its options (the
    # vcr switch's options and routing, which import nothing but the standard library and pytest).
    assert [name for name in with_plugin if not name.startswith("llmcassette")] == without
    assert {name for name in with_plugin if name.startswith("llmcassette")} <= {
        "llmcassette",
        "llmcassette.__version__",
        "llmcassette._exceptions",
        "llmcassette._filters",
        "llmcassette._vcr_switch",
        "llmcassette.pytest_plugin",
    }
