"""Spec for packager/progress.py: a held warning is said once, after the table, unless the
table's own measurement overturned it."""

from __future__ import annotations

import io

from rich.console import Console

from packager.progress import Reporter


def _reporter() -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    return Reporter(Console(file=out, width=200), live=False, hold_warnings=True), out


def test_held_warnings_wait_and_print_once_each():
    rep, out = _reporter()
    rep.warn("quantize: int8 is not faster")
    rep.warn("quantize: int8 is not faster")
    rep.warn("data: 3 rows dropped")
    assert out.getvalue() == ""  # nothing before the table
    assert rep.flush_warnings() == ["quantize: int8 is not faster", "data: 3 rows dropped"]
    assert out.getvalue().count("warning:") == 2
    assert rep.flush_warnings() == []  # flushed: not said again


def test_a_warning_the_report_says_or_overturned_is_not_repeated():
    rep, out = _reporter()
    rep.warn("quantize: int8 model is not faster than fp32 on this host")
    rep.warn("evaluate: the student is far from the teacher")
    rep.warn("export: guessed dims")
    shown = rep.flush_warnings(
        skip=[
            "the student is far from the teacher",  # the report says it (without the step)
            "int8 model is not faster than fp32 on this host",  # the bench measured otherwise
        ]
    )
    assert shown == ["export: guessed dims"]
    assert "not faster" not in out.getvalue()


def test_warnings_print_at_once_when_not_held():
    out = io.StringIO()
    rep = Reporter(Console(file=out, width=200), live=False)
    rep.warn("x: y")
    assert "warning: x: y" in out.getvalue() and rep.held == []
