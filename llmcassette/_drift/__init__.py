"""
``llmcassette drift``: re-send each recorded request to its live upstream, record the fresh
answers, and report how the provider's wire format changed since the cassette was recorded.

The data flows one way through four modules: :mod:`._plan` decides what each interaction sends
(or why it cannot), :mod:`._send` sends within the run's bounds and captures the answers,
:mod:`._report` pairs and diffs them, and :mod:`._run` ties the steps together and writes files.
"""

from ._plan import CREDENTIALS, Credential, Planned, plan_interaction, token_caps
from ._report import DriftReport, Outcome, Result, exit_code
from ._run import DriftOptions, collect_cassettes, fresh_path, run_drift
from ._send import Fresh, SendOptions, retry_delay_s

__all__ = [
    "CREDENTIALS",
    "Credential",
    "DriftOptions",
    "DriftReport",
    "Fresh",
    "Outcome",
    "Planned",
    "Result",
    "SendOptions",
    "collect_cassettes",
    "exit_code",
    "fresh_path",
    "plan_interaction",
    "retry_delay_s",
    "run_drift",
    "token_caps",
]
