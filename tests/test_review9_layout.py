"""h-review9: the cold reader (`_lazy`, `_layout`) held to the general path (YAML, then the models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import llmcassette
from llmcassette import _layout, _storage
from llmcassette._lazy import load_lazy

_TEXT = (
    "interactions:\n"
    "- request:\n"
    "    method: GET\n"
    "    uri: https://api.test/v1/a\n"
    "    headers: {}\n"
    "  response:\n"
    "    status: {code: 200, message: OK}\n"
    "    headers: {}\n"
    "    body:\n"
    "      string: |-\n"
    "        line1\n"
    "        line2\n"
    "- request:\n"
    "    method: GET\n"
    "    uri: https://api.test/v1/b\n"
    "    headers: {}\n"
    "  response:\n"
    "    status: {code: 200, message: OK}\n"
    "    headers: {}\n"
    "    body:\n"
    "      string: two\n"
)


def _outcome(call: Any) -> Any:
    try:
        return [interaction.model_dump() for interaction in call()]
    except llmcassette.CassetteFormatError as exc:
        return type(exc).__name__, str(exc)


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    cold = _outcome(lambda: load_lazy(path).interactions())
    with monkeypatch.context() as patch:
        patch.setattr(_storage, "load_cassette_yaml", _layout.load_yaml)
        general = _outcome(lambda: llmcassette.load_cassette(path).interactions)
    return cold, general


def test_the_plain_text_loads_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_TEXT)
    cold, general = _both(path, monkeypatch)
    assert isinstance(cold, list) and cold == general


@pytest.mark.xfail(
    strict=True,
    reason=(
        "h-review9: an item written `-  request:` (its keys two columns past the dash) loads "
        "through the cold reader, where YAML refuses the file (`response:` at column 2)"
    ),
)
@pytest.mark.parametrize("item", [0, 1])
def test_an_item_indented_past_its_dash_is_refused_as_yaml_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, item: int
) -> None:
    path = tmp_path / "c.yaml"
    at = [i for i in range(len(_TEXT)) if _TEXT.startswith("- request:", i)][item]
    path.write_text(_TEXT[:at] + "-  request:" + _TEXT[at + len("- request:") :])
    cold, general = _both(path, monkeypatch)
    assert general[0] == "CassetteFormatError" and "not valid YAML" in general[1]
    assert cold == general


@pytest.mark.xfail(
    strict=True,
    reason=(
        "h-review9: a literal body line that starts with U+2028 (a line break to YAML) is taken "
        "for a top-level key by the cold reader's first-column scan: the rest of the file is read "
        "as the header and the error names `llmcassette_schema`, where YAML loads the file"
    ),
)
def test_a_line_separator_at_a_body_lines_start_loads_as_yaml_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    # (the file's own header first, as llmcassette writes it)
    text = "version: 1\nllmcassette_schema: 1\n" + _TEXT + "...\n"
    # (the last item's body)
    path.write_text(
        text.replace("      string: two\n", "      string: |-\n        two\n\u2028        three\n")
    )
    cold, general = _both(path, monkeypatch)
    assert isinstance(general, list)  # (YAML reads it)
    assert cold == general
