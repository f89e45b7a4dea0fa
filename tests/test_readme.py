"""The README's two set-up commands are the contract with a newcomer; CI runs the second."""

from __future__ import annotations

from tests.conftest import REPO


def setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_two_commands() -> None:
    main_job, tests = setup_commands()
    assert "releasectl plan" in main_job and "releasectl apply --yes" in main_job
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    test_command = setup_commands()[1].split(" && ")[-1]
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
