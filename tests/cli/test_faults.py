"""
`llmcassette faults` and the catalogue behind it: every registered fault is listed with its
parameters and an example spec that parses back to it, and the details agree with the fault
classes and the named fault sets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from llmcassette._fault_catalog import FAMILIES, catalog, fault_info
from llmcassette._matrix import FAULT_SETS, STANDARD_FAULTS
from llmcassette.cli import cli
from llmcassette.faults import (
    ReplacingFault,
    SessionFault,
    StreamFault,
    connection,
    fault_names,
    fault_types,
    parse_fault,
    status,
)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


# -- the catalogue --------------------------------------------------------------------------------


def test_the_catalogue_lists_every_registered_fault_once() -> None:
    assert sorted(info.name for info in catalog()) == fault_names()
    families = [info.family for info in catalog()]
    assert families == sorted(families, key=list(FAMILIES).index)
    # Every family has faults, and they come in the documented order.
    assert list(dict.fromkeys(families)) == list(FAMILIES) == ["status", "connection", "stream", "websocket"]


@pytest.mark.parametrize("name", fault_names())
def test_each_example_parses_back_to_the_same_fault(name: str) -> None:
    info = fault_info(name)
    fault = parse_fault(info.example)
    assert fault.name == name
    assert parse_fault(fault.spec()) == fault
    # An example shows at least one parameter, or is the bare name of a fault that needs none.
    assert ":" in info.example or info.example == name


@pytest.mark.parametrize("name", fault_names())
def test_each_parameter_is_a_field_of_the_fault(name: str) -> None:
    info = fault_info(name)
    cls = fault_types()[name]
    assert [p.name for p in info.params] == [p.name for p in info.own_params] + [
        p.name for p in info.params if p.common
    ]
    assert {p.name for p in info.params} == set(cls.model_fields)
    for param in info.params:
        field = cls.model_fields[param.name]
        assert param.description == field.description
        assert param.required == field.is_required()
        # The default, written as a spec writes it, parses back to the field's default.
        if param.default is not None:
            required = _required(name)
            with_default = {**required, param.name: param.default}
            spec = f"{name}:" + ",".join(f"{key}={value}" for key, value in with_default.items())
            bare = f"{name}:" + ",".join(f"{key}={value}" for key, value in required.items())
            assert parse_fault(spec) == parse_fault(bare.rstrip(":"))
    assert info.family == cls.family


@pytest.mark.parametrize("name", fault_names())
def test_each_family_is_the_one_of_the_faults_base_class(name: str) -> None:
    # The family comes from the class attribute, which the family's base class sets: it agrees
    # with what the fault does (a stream fault changes the recording, the others replace it).
    cls = fault_types()[name]
    bases: dict[str, type] = {
        "status": status._StatusFault,
        "connection": connection._ConnectionFault,
        "stream": StreamFault,
        "websocket": SessionFault,
    }
    assert [family for family, base in bases.items() if issubclass(cls, base)] == [fault_info(name).family]
    assert [issubclass(cls, kind) for kind in (StreamFault, ReplacingFault, SessionFault)].count(True) == 1


def _required(name: str) -> dict[str, str]:
    """The parameters a spec of ``name`` cannot leave out."""
    return {"code": "504"} if name == "status" else {}


def test_parameter_types_and_defaults_read_as_a_spec_writes_them() -> None:
    params = {p.name: p for p in fault_info("rate_limit").params}
    assert params["retry_after"].signature() == "retry_after: float = 1"
    assert params["rate_limit_headers"].signature() == "rate_limit_headers: bool = true"
    assert params["times"].signature() == "times: int"
    assert params["seed"].signature() == "seed: int = 0"
    rechunk = {p.name: p for p in fault_info("rechunk").params}
    assert rechunk["mode"].signature() == "mode: fixed|random|event|adversarial = fixed"
    status = fault_info("status")
    assert status.own_params[0].signature() == "code: int (required)"


def test_fault_sets_are_reported_with_their_specs() -> None:
    for info in catalog():
        expected = [
            (set_name, case, spec)
            for set_name, cases in FAULT_SETS.items()
            for case, spec in cases.items()
            if spec.partition(":")[0] == info.name
        ]
        assert list(info.sets) == expected
        assert info.standard == any(spec.partition(":")[0] == info.name for spec in STANDARD_FAULTS.values())
    assert ("standard", "rechunk_adversarial", "rechunk:mode=adversarial") in fault_info("rechunk").sets
    assert not fault_info("slow").standard


def test_an_unknown_name_suggests_close_ones() -> None:
    suggested = r"unknown fault 'rate_limt'; did you mean 'rate_limit' or 'ws_rate_limits'\?"
    with pytest.raises(ValueError, match=suggested):
        fault_info("rate_limt")


# -- the command ----------------------------------------------------------------------------------


def test_the_listing_shows_every_fault_with_its_example() -> None:
    result = run("faults")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"{len(fault_names())} faults.")
    for info in catalog():
        line = next(line for line in out.splitlines() if line.startswith(f"  {info.name} "))
        assert (line.split()[1] == "*") == info.standard, line
        assert f"example: {info.example}" in out
        for param in info.own_params:
            # Wrapping never cuts a parameter's `name: type = default` in two.
            assert param.signature() in out
    for family in FAMILIES:
        assert f"{family.capitalize()} faults: " in out
    assert "times: int, nth: int, every: int" in out


def test_the_listing_puts_each_fault_under_its_familys_heading() -> None:
    headings = {f"{family.capitalize()} faults: {meaning}.": family for family, meaning in FAMILIES.items()}
    under: dict[str, str] = {}
    family = ""
    for line in run("faults").stdout.splitlines():
        family = headings.get(line, family)
        if line.startswith("  ") and not line.startswith("   "):
            under[line.split()[0]] = family
    assert under == {info.name: info.family for info in catalog()}
    assert [line for line in run("faults").stdout.splitlines() if line in headings] == list(headings)


def test_one_fault_in_full() -> None:
    result = run("faults", "disconnect")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    info = fault_info("disconnect")
    assert lines[0] == f"disconnect: {info.summary}"
    assert lines[1].startswith("family: stream")
    assert "in fault sets: standard as disconnect:times=1" in result.stdout
    assert info.doc.splitlines()[0] in lines
    for param in info.params:
        assert any(line.strip().startswith(param.signature()) for line in lines), param.name
    assert lines[-2:] == ["Example:", f"  {info.example}"]


def test_json() -> None:
    listing = json.loads(run("faults", "--json").stdout)
    assert [item["name"] for item in listing] == [info.name for info in catalog()]
    one = json.loads(run("faults", "status", "--json").stdout)
    assert one["name"] == "status" and one["family"] == "status" and not one["standard"]
    code = next(param for param in one["params"] if param["name"] == "code")
    assert code == {
        "name": "code",
        "type": "int",
        "default": None,
        "required": True,
        "description": "the HTTP status code",
        "common": False,
    }
    assert parse_fault(one["example"]).name == "status"


def test_an_unknown_fault_is_a_one_line_usage_error() -> None:
    result = run("faults", "trunate")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("llmcassette: unknown fault 'trunate'; did you mean 'truncate'?")
    assert result.stderr.count("\n") == 1


def test_the_console_script() -> None:
    script = Path(sys.executable).parent / "llmcassette"
    done = subprocess.run(
        [str(script), "faults", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert sorted(item["name"] for item in json.loads(done.stdout)) == fault_names()
