"""Progress output of long commands on stderr: rich bars on a terminal, plain lines otherwise,
nothing with -q. Stdout stays for results (JSON stays parseable). With `--log-format json`
stderr carries only JSON lines: the steps are told by their events, messages become log
records."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from releasectl.engine.apply import StepOutcome, StepReporter
from releasectl.models.plan import Step
from releasectl.secrets import redact
from releasectl.targets.base import NullProgress, Progress


def _step_text(step: Step) -> str:
    move = f"{'-' if step.from_ is None else step.from_} -> {'-' if step.to is None else step.to}"
    text = f"{step.component} {step.action} {move}"
    return f"{text} ({step.migration})" if step.migration else text


class RichProgress:
    def __init__(self, console: Any) -> None:
        self.console = console
        self._bar: Any = None
        self._task: Any = None

    def start(self, label: str, total: int | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.finish()
        self._bar = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, amount)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class CliReporter(StepReporter):
    def __init__(
        self, *, verbosity: int = 0, interactive: bool | None = None, log_format: str = "text"
    ) -> None:
        self.json = log_format == "json"
        # with JSON logs the events say what happens; the lines and bars would break them
        self.verbosity = -1 if self.json else verbosity
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._console: Any = None

    def _rich(self) -> Any:
        if self._console is None:
            from rich.console import Console

            from releasectl.cli.context import options

            self._console = Console(stderr=True, no_color=not options().color)
        return self._console

    def message(self, text: str) -> None:
        if self.json:
            logging.getLogger("releasectl.messages").warning(text)
        elif self.verbosity >= 0:
            click.echo(redact(text), err=True)

    def progress(self) -> Progress:
        if self.interactive and self.verbosity >= 0:
            return RichProgress(self._rich())
        return NullProgress()

    def step_started(self, index: int, total: int, step: Step) -> None:
        if self.verbosity > 0 or (self.interactive and self.verbosity >= 0):
            click.echo(f"[{index + 1}/{total}] {_step_text(step)} ...", err=True)

    def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None:
        if self.verbosity < 0:
            return
        mark = "ok" if outcome.result == "success" else "FAILED"
        extra = f", backup {outcome.backup}" if outcome.backup else ""
        click.echo(
            f"[{index + 1}/{total}] {_step_text(outcome.step)}: {mark} "
            f"({outcome.duration:.2f}s{extra})",
            err=True,
        )
        if outcome.output and self.verbosity > 0:
            for line in redact(outcome.output).splitlines()[-20:]:
                click.echo(f"    | {line}", err=True)
