"""pytest-recording suites: `vcr` cassettes replay through llmcassette with faults; others are untouched."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.recordings import Recording

from ._cassettes import CLIENT
from .conftest import NO_PLUGIN_ARGS, needs_vcrpy_skip_patchers

pytest_plugins = ["pytester"]
pytestmark = needs_vcrpy_skip_patchers

Run = Callable[..., pytest.RunResult]


def _vcr_cassette(pytester: pytest.Pytester, name: str, recording: Recording) -> None:
    recording.copy_to(pytester.path / "cassettes" / "test_vcr" / f"{name}.yaml")


def test_llm_faults_on_a_vcr_test_replay_its_cassette_with_faults(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_vcr=CLIENT
        + """
@pytest.mark.vcr
@pytest.mark.llm_faults("rate_limit:times=1", "rechunk:mode=fixed,size=1")
def test_chat(vcr, llm_cassette):
    assert chat(retries=1) == "Hello there"
    assert str(llm_cassette.path) == vcr.path
    assert [a.status for a in llm_cassette.attempts] == [429, 200]
    assert len(llm_cassette.attempts[1].chunks) > 50  # one byte per chunk: llmcassette played it
"""
    )
    _vcr_cassette(pytester, "test_chat", recording)
    run().assert_outcomes(passed=1)


_PLAIN = """
import httpx, pytest

def _client():
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, text="mock")))

def test_mock_transport():
    assert _client().get("https://example.invalid/").text == "mock"

@pytest.mark.vcr
def test_vcr_replays():
    reply = httpx.post(
        "https://api.openai.com/v1/chat/completions",
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert "Hello" in reply.text

@pytest.mark.vcr
def test_vcr_patches_mock_transport():
    # vcrpy intercepts MockTransport too: in mode none, this request is refused.
    _client().get("https://example.invalid/")
"""


def test_tests_that_do_not_use_it_behave_as_without_the_plugin(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(test_vcr=_PLAIN)
    _vcr_cassette(pytester, "test_vcr_replays", recording)
    outcomes = []
    for result in [run(), pytester.runpytest(*NO_PLUGIN_ARGS)]:
        outcomes.append(result.parseoutcomes())
        result.stdout.fnmatch_lines(["*CannotOverwriteExistingCassetteException*"])
    assert outcomes[0] == outcomes[1] == {"passed": 2, "failed": 1}


def test_a_fault_matrix_on_a_vcr_test_replays_the_one_vcr_cassette(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_vcr=CLIENT
        + """
@pytest.mark.vcr
@pytest.mark.llm_fault_matrix(["rate_limit:times=1", "server_error:times=1", "rechunk:mode=fixed,size=3"])
def test_chat(vcr, llm_cassette, llm_fault):
    assert vcr.path.endswith("test_chat.yaml")  # vcrpy uses the same file, not one per case
    assert str(llm_cassette.path) == vcr.path
    assert chat(retries=1) == "Hello there"
    assert llm_fault.spec() in llm_cassette.attempts[0].faults
"""
    )
    _vcr_cassette(pytester, "test_chat", recording)
    result = run("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_chat[[]rate_limit] PASSED*", "*test_chat[[]rechunk] PASSED*"])
    assert [p.name for p in (pytester.path / "cassettes" / "test_vcr").iterdir()] == ["test_chat.yaml"]


_VCR_CONFIG = """
@pytest.fixture
def vcr_config():
    return {VCR_CONFIG}

@pytest.mark.vcr
@pytest.mark.llm_faults("rechunk:mode=fixed,size=5")
def test_vcr(llm_cassette):
    assert chat("bye") == chat("bye") == "Hello there"

@pytest.mark.llm_cassette
def test_plain(llm_cassette):
    assert chat("bye") == chat("bye") == "Hello there"
"""


@pytest.mark.parametrize(
    ("vcr_config", "outcomes"),
    [
        # vcrpy matches without the body: on the vcr test, "bye" replays what "hi" recorded, once.
        pytest.param({}, {"failed": 2}, id="none"),
        pytest.param({"allow_playback_repeats": True}, {"passed": 1, "failed": 1}, id="repeats"),
        # Matching on the body, as llmcassette does by default, neither test finds "bye".
        pytest.param(
            {"allow_playback_repeats": True, "match_on": ["method", "uri", "raw_body"]},
            {"failed": 2},
            id="body",
        ),
        # Without the body, both tests replay "hi" for "bye", again and again.
        pytest.param(
            {"allow_playback_repeats": True, "match_on": ["method", "host", "path"]}, {"passed": 2}, id="path"
        ),
    ],
)
def test_vcr_config_matching_and_repeats_are_honoured(
    pytester: pytest.Pytester,
    run: Run,
    vcr_config: dict[str, object],
    outcomes: dict[str, int],
    recording: Recording,
) -> None:
    pytester.makepyfile(test_vcr=CLIENT + _VCR_CONFIG.replace("{VCR_CONFIG}", repr(vcr_config)))
    _vcr_cassette(pytester, "test_vcr", recording)
    folder = pytester.path / "cassettes" / "test_vcr"
    recording.copy_to(folder / "test_plain.yaml")
    result = run()
    assert {k: v for k, v in result.parseoutcomes().items() if k in ("passed", "failed")} == outcomes


def test_vcr_config_a_matcher_llmcassette_lacks_is_a_clear_error(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(
        test_vcr=CLIENT + _VCR_CONFIG.replace("{VCR_CONFIG}", '{"match_on": ["method", "headers"]}')
    )
    result = run("-k", "not plain")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "llmcassette: test_vcr.py::test_vcr: `vcr_config` (or the `vcr` marker) matches requests on "
            "'headers', which llmcassette cannot match on (it matches on body, host, *). Give the test its "
            "own `@pytest.mark.llm_cassette(match_on=[[]...])`, or leave those parts out of match_on."
        ]
    )
    result.stdout.no_fnmatch_line("*During handling*")  # said once, not once per exception


def test_record_mode_of_a_vcr_test_is_the_one_pytest_recording_gives_vcrpy(
    pytester: pytest.Pytester, run: Run, upstream: str
) -> None:
    pytester.makepyfile(
        test_rec=f"""
        import httpx, pytest

        @pytest.fixture
        def vcr_config():
            return {{"record_mode": "once"}}

        @pytest.mark.vcr
        @pytest.mark.llm_faults("rechunk:mode=fixed,size=5")
        def test_vcr(vcr, llm_cassette):
            assert vcr.record_mode == llm_cassette.record_mode == "once"
            httpx.post("{upstream}/json", json={{}})

        @pytest.mark.vcr
        @pytest.mark.llm_cassette(record_mode="all")
        def test_conflict():
            pass
        """
    )
    # pytest-recording lets `vcr_config` win over the option, and so does llmcassette on a vcr test.
    result = run("--record-mode=none")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "llmcassette: test_rec.py::test_conflict: `llm_cassette(record_mode=...)` is not used on a "
            "`vcr` test, whose cassette file vcrpy shares: set record_mode on the `vcr` marker or in "
            "`vcr_config`, or give `llm_cassette` a path of its own."
        ]
    )
    assert (pytester.path / "cassettes" / "test_rec" / "test_vcr.yaml").is_file()


_RECORDED = """
import httpx, json, pytest

URL = {url!r}

@pytest.mark.vcr
@pytest.mark.llm_cassette
def test_chat():
    echo = httpx.post(f"{{URL}}/json", json={{"q": "caf\\u00e9"}}).json()
    assert echo == {{"echo": {{"q": "caf\\u00e9"}}, "path": "/json"}}
    with httpx.stream("POST", f"{{URL}}/sse?n=6&split=9&gap_ms=0", json={{"stream": True}}) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        text = "".join(
            json.loads(line[6:])["choices"][0]["delta"]["content"]
            for line in reply.iter_lines()
            if line.startswith("data: {{")
        )
    assert text == "tok0 tok1 tok2 tok3 tok4 tok5 "
"""


def test_what_llmcassette_records_under_vcr_replays_with_pytest_recording_alone(
    pytester: pytest.Pytester, run: Run, upstream: str, recording: Recording
) -> None:
    pytester.makepyfile(test_vcr=_RECORDED.format(url=upstream))
    pytester.makeini("[pytest]\nmarkers =\n    llm_cassette: llmcassette's marker, without llmcassette")
    folder = pytester.path / "cassettes" / "test_vcr"
    folder.mkdir(parents=True)
    recording.copy_to(folder / "test_chat.yaml")  # stale: rewrite replaces it
    run("--record-mode=rewrite").assert_outcomes(passed=1)
    text = (folder / "test_chat.yaml").read_text()
    # llmcassette wrote it (chunk boundaries under `stream`), with bodies as vcrpy's text.
    assert "llmcassette_schema: 1" in text and "chunks:" in text and "api.openai.com" not in text
    assert "parsed_body" not in text
    # Without llmcassette, pytest-recording's vcrpy replays it, the network blocked.
    result = pytester.runpytest(*NO_PLUGIN_ARGS, "-p", "no:cacheprovider", "--block-network")
    result.assert_outcomes(passed=1)
    # And llmcassette replays it with the recorded chunks.
    run("--block-network").assert_outcomes(passed=1)


def test_vcr_config_filters_keep_secrets_out_of_what_llmcassette_records(
    pytester: pytest.Pytester, run: Run, upstream: str
) -> None:
    pytester.makepyfile(
        test_rec=f"""
        import httpx, pytest

        @pytest.fixture
        def vcr_config():
            return {{
                "filter_headers": ["x-gateway-token", ("x-team", "hidden")],
                "filter_query_parameters": ["session"],
            }}

        @pytest.mark.vcr
        @pytest.mark.llm_cassette
        def test_vcr():
            headers = {{"x-gateway-token": "gw-secret-1", "x-team": "team-secret-2"}}
            httpx.post("{upstream}/json?session=sess-secret-3", json={{}}, headers=headers)

        @pytest.mark.llm_cassette
        def test_plain():
            headers = {{"x-team": "team-secret-2"}}
            httpx.post("{upstream}/json?session=sess-secret-3", json={{}}, headers=headers)
        """
    )
    run("--record-mode=once").assert_outcomes(passed=2)
    texts = {}
    for name in ("test_vcr", "test_plain"):
        texts[name] = text = (pytester.path / "cassettes" / "test_rec" / f"{name}.yaml").read_text()
        assert "secret" not in text
        assert "x-team: [REDACTED]" in text
    # On the vcr test, vcrpy's own filters run first and drop the parameter, as vcrpy would.
    assert "session=" not in texts["test_vcr"] and "session=REDACTED" in texts["test_plain"]
    run().assert_outcomes(passed=2)  # the scrubbed recordings still match the live requests
