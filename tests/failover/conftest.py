"""The chaos scenarios' table at the end of the run (``-rA`` or not)."""

from __future__ import annotations

import pytest
from chaos import RESULTS, table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what every chaos scenario of this run measured."""
    if RESULTS:
        terminalreporter.write_sep("=", "chaos scenarios")
        terminalreporter.write_line(table(RESULTS))
