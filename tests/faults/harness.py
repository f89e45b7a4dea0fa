"""Running one fault: a real `releasectl` process (forked from the test process, so it pays
no interpreter start-up) that a failpoint or a signal stops, then the checks every fault must
pass: `status` tells the truth, `recover` brings data and state to the last consistent step,
the next apply completes, `history --verify` passes, and the target's data equals the
picture of a clean run at the version the state records."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from releasectl.util import failpoints
from tests.conftest import Result, run_cli
from tests.faults.kinds import RELEASE, TOP, Kind, Picture, Place

# version -> picture of the data a clean run leaves, per kind (computed once per process)
_GOLDEN: dict[str, dict[int, Picture]] = {}


@dataclass
class Child:
    """A forked `releasectl` command."""

    pid: int
    out: Path
    err: Path
    status: int | None = None

    def wait(self, timeout: float = 60.0, *, stopped: bool = False) -> int:
        """Exit code (negative: killed by that signal); with `stopped`, return -SIGSTOP as
        soon as the process is stopped instead."""
        until = time.monotonic() + timeout
        flags = os.WNOHANG | (os.WUNTRACED if stopped else 0)
        while True:
            pid, status = os.waitpid(self.pid, flags)
            if pid:
                if os.WIFSTOPPED(status):
                    return -os.WSTOPSIG(status)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            if time.monotonic() > until:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                pytest.fail(f"releasectl did not finish in {timeout} s:\n{self.text()}")
            time.sleep(0.01)

    def text(self) -> str:
        return f"--- stdout\n{self.out.read_text()}\n--- stderr\n{self.err.read_text()}"


def fork_cli(root: Path, *args: str, env: dict[str, str] | None = None) -> Child:
    """Run `releasectl ARGS` in `root` in a forked process, as the console script would."""
    out, err = (
        root.parent / f"out-{time.monotonic_ns()}",
        root.parent / f"err-{time.monotonic_ns()}",
    )
    out_fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err_fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCONT):
                signal.signal(sig, signal.SIG_DFL)
            os.chdir(root)
            os.environ.pop(failpoints.ENV, None)
            os.environ.update(env or {})
            failpoints.reset()
            from releasectl.cli.app import main

            code = main(list(args))
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(out_fd)
    os.close(err_fd)
    return Child(pid, out, err)


@dataclass
class Fault:
    """One fault against one kind of target, in its own workspace."""

    kind: Kind
    place: Place
    notes: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.place.root

    def cli(self, *args: str) -> Result:
        failpoints.reset()
        return run_cli(*args, cwd=self.root)

    def apply(self, *extra: str, failpoint: str | None = None) -> Child:
        env = {failpoints.ENV: failpoint} if failpoint else {}
        return fork_cli(self.root, "apply", "--yes", *extra, env=env)

    def status(self) -> dict[str, Any]:
        import json

        result = self.cli("status", "--format", "json")
        assert result.code == 0, result
        data: dict[str, Any] = json.loads(result.out)
        return data

    def version(self, status: dict[str, Any] | None = None) -> int:
        shown = status if status is not None else self.status()
        return int(shown["components"][self.kind.component]["version"] or 0)

    def picture(self) -> Picture:
        return self.kind.picture(self.place)

    def golden(self) -> dict[int, Picture]:
        return _GOLDEN[self.kind.name]

    def expect_picture(self, version: int, when: str) -> None:
        got, want = self.picture(), self.golden()[version]
        assert got == want, (
            f"{when}: the {self.kind.name} data is not what version {version} leaves\n"
            f"got:  {got}\nwant: {want}"
        )

    def settle(self) -> None:
        """Every fault ends here: status tells the truth, recover, data matches, apply
        completes, history verifies."""
        shown = self.status()
        assert not shown["history_problems"], shown["history_problems"]
        version = self.version(shown)
        journal = shown["journal"]
        if shown["dirty"]:
            step = journal["step"]
            assert step["component"] == self.kind.component
            assert (step["from"] or 0) == version, (step, version)  # nothing recorded early
            if journal["phase"] == "backup":  # nothing had run
                self.expect_picture(version, "dirty before the step ran")
            recovered = self.cli("recover")
            assert recovered.code == 0, recovered
            shown = self.status()
            assert not shown["dirty"], shown
            version = self.version(shown)
        self.expect_picture(version, f"status says version {version}")
        done = self.cli("apply", "--yes")
        assert done.code == 0, done
        shown = self.status()
        assert shown["lock"] is None and not shown["dirty"]
        assert self.version(shown) == TOP and shown["release"] == RELEASE
        self.expect_picture(TOP, "after the next apply")
        verified = self.cli("history", "--verify")
        assert verified.code == 0, verified


def compute_golden(kind: Kind, make_place: Callable[[Kind, str], Place]) -> None:
    """The picture of each version after a clean run, once per process."""
    if kind.name in _GOLDEN:
        return
    place = make_place(kind, "golden")
    kind.write(place)
    pictures = {0: kind.picture(place)}
    for version in range(1, TOP + 1):
        failpoints.reset()
        result = run_cli("migrate", kind.component, str(version), "--yes", cwd=place.root)
        assert result.code == 0, result
        pictures[version] = kind.picture(place)
    assert len({repr(p) for p in pictures.values()}) == TOP + 1, "versions look alike"
    _GOLDEN[kind.name] = pictures
