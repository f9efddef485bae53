"""The fault suite's report: each test records the faults it injected and the objects it
checked; the totals are printed at the end of every run that included fault tests."""

from __future__ import annotations

import pytest
from faultkit import REPORT, FaultReport


@pytest.fixture
def fault_report() -> FaultReport:
    return REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT.faults:
        return
    terminalreporter.section("fault suite report")
    for fault in REPORT.faults:
        terminalreporter.write_line(f"injected: {fault}")
    terminalreporter.write_line(
        f"faults injected: {len(REPORT.faults)}, objects checked: {REPORT.checked}, "
        f"objects lost: {REPORT.lost}"
    )
