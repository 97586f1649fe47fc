"""Progress and status output: rich bars on a terminal, quiet in CI and when piped."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


class Reporter:
    """Stage status lines and progress bars; `quiet` keeps only the status lines.

    `hold_warnings`: a command that ends with a table (build) keeps its stages' warnings until
    the table is printed, so one fact is said once, after the measurement it is about, and a
    stage's verdict that the table's own measurement overturns is not said at all
    (`flush_warnings(skip=...)`)."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        live: bool | None = None,
        verbose: bool = True,
        hold_warnings: bool = False,
    ):
        self.console = console or Console(stderr=True, highlight=False)
        self.live = interactive() if live is None else live
        self.verbose = verbose
        self.hold_warnings = hold_warnings
        self.held: list[str] = []

    def stage(self, step: str, status: str, detail: str = "") -> None:
        if self.verbose:
            mark = {"cached": "[dim]·[/]", "done": "[green]✓[/]", "failed": "[red]✗[/]"}.get(
                status, "-"
            )
            extra = f" [dim]{detail}[/]" if detail else ""
            self.console.print(f"{mark} {step:<15} {status}{extra}")

    def note(self, message: str) -> None:
        if self.verbose:
            self.console.print(f"  [dim]{message}[/]")

    def warn(self, message: str) -> None:
        if self.hold_warnings:
            if message not in self.held:
                self.held.append(message)
            return
        self.console.print(f"[yellow]warning:[/] {message}")

    def flush_warnings(self, skip: Iterable[str] = (), console: Console | None = None) -> list[str]:
        """Print the held warnings once each (on `console`, else the reporter's), except those
        in `skip` (said elsewhere, or overturned); returns what was printed."""
        console = console or self.console
        skipped, shown = set(skip), []
        for message in self.held:
            text = message.partition(": ")[2]
            if message in skipped or text in skipped or message in shown:
                continue
            console.print(f"[yellow]warning:[/] {message}")
            shown.append(message)
        self.held = []
        return shown

    @contextmanager
    def track(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        """Yield `advance(n=1, total=None, **fields)` (`total` resizes the bar); renders a bar
        only on an interactive terminal."""
        if not self.live:
            yield lambda n=1, total=None, **fields: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total, info="")

            def advance(n: int = 1, total: int | None = None, **fields: object) -> None:
                info = " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in fields.items()
                )
                bar.update(task, advance=n, info=info, total=total)

            yield advance


class SilentReporter(Reporter):
    def __init__(self) -> None:
        super().__init__(Console(stderr=True, quiet=True), live=False, verbose=False)
