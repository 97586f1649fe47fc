"""Progress and status output: rich bars on a terminal, quiet in CI and when piped."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


class Reporter:
    """Stage status lines and progress bars; `quiet` keeps only the status lines."""

    def __init__(
        self, console: Console | None = None, *, live: bool | None = None, verbose: bool = True
    ):
        self.console = console or Console(stderr=True, highlight=False)
        self.live = interactive() if live is None else live
        self.verbose = verbose

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
        self.console.print(f"[yellow]warning:[/] {message}")

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
