"""Batched shell syntax checks (releasectl.targets.script.syntax) say "clean" only for parts that
`bash -n` accepts one by one: every pair of hostile parts, in both orders, is compared with
the one-by-one verdict. Real bash throughout."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from releasectl.targets.script import checks, syntax
from releasectl.workspace.catalogue import Migration

BASH = shutil.which("bash")

# Parts that are wrong alone but could complete each other, or the fence, when batched.
HOSTILE = {
    "clean": "echo hi\n",
    "open_double_quote": 'echo "hi\n',
    "close_double_quote": 'echo ok"\n',
    "open_single_quote": "echo 'a\n",
    "close_single_quote": "b'\n",
    "open_backtick": "echo `a\n",
    "close_backtick": "b`\n",
    "trailing_pipe": "echo a |\n",
    "trailing_and": "true &&\n",
    "trailing_or": "false ||\n",
    "trailing_backslash": "echo a \\",
    "bang": "!\n",
    "open_if": "if true; then\n",
    "close_if": "fi\n",
    "open_while": "while true; do\n",
    "close_while": "done\n",
    "open_case": "case x in\n",
    "close_case": "esac\n",
    "open_subshell": "(\n",
    "close_paren": ")\n",
    "open_comsub": "echo $(\n",
    "open_arith": "echo $((1+\n",
    "close_arith": "2))\n",
    "open_arith_command": "((1+\n",
    "open_old_arith": "echo $[1+\n",
    "close_bracket": "2]\n",
    "open_param": "echo ${x\n",
    "close_brace_word": "}\n",
    "brace_swap": "}; {\n",
    "open_heredoc": "cat <<END\nhi\n",
    "heredoc_delimiter": "END\n",
    "heredoc_brace_delimiter": "cat <<}\nx\n",
    "function": "f() {\n  echo\n}\n",
    "comment": "# ${x $(( ' \" \n",
    "translated_string": 'echo $"x"\n',
    "crlf_brace": "echo a\r\n}\r\n",
    "redirect_without_target": "echo >\n",
    "lone_semicolon": ";\n",
    "function_keyword": "function\n",
    "extglob": "shopt -s extglob\n[[ a == @(a|b) ]]\n",
}


def alone(path: Path) -> bool:
    assert BASH is not None
    verdict = syntax.check_one(BASH, path)
    assert verdict is not None
    return verdict.ok


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bool]]:
    root = tmp_path_factory.mktemp("hostile")
    found: dict[str, tuple[bytes, bool]] = {}
    for name, text in HOSTILE.items():
        path = root / f"{name}.sh"
        path.write_text(text)
        found[name] = (text.encode(), alone(path))
    return found


def test_the_corpus_holds_both_verdicts(hostile: dict[str, tuple[bytes, bool]]) -> None:
    ok = {name for name, (_, clean) in hostile.items() if clean}
    assert {"clean", "function", "open_heredoc", "extglob"} <= ok
    assert {"open_double_quote", "trailing_pipe", "open_arith", "brace_swap"}.isdisjoint(ok)


def test_no_pair_of_parts_fools_a_batch(hostile: dict[str, tuple[bytes, bool]]) -> None:
    assert BASH is not None
    fooled = []
    for first, second in itertools.product(hostile, repeat=2):
        parts = [hostile[first][0], hostile[second][0]]
        if not all(syntax.batchable(p) for p in parts):
            continue
        if syntax.batch_clean(BASH, parts) and not (hostile[first][1] and hostile[second][1]):
            fooled.append((first, second))
    assert fooled == []


def test_chains_of_three_do_not_fool_a_batch(hostile: dict[str, tuple[bytes, bool]]) -> None:
    assert BASH is not None
    chains = [
        ("open_double_quote", "clean", "close_double_quote"),
        ("open_arith", "clean", "close_arith"),
        ("open_old_arith", "clean", "close_bracket"),
        ("open_heredoc", "clean", "heredoc_delimiter"),
        ("open_single_quote", "close_single_quote", "clean"),
    ]
    for chain in chains:
        assert not syntax.batch_clean(BASH, [hostile[n][0] for n in chain]), chain


def test_brace_words_are_never_batched() -> None:
    assert not syntax.batchable(b"f() {\n  echo\n}\n")
    assert not syntax.batchable(b"{ echo a; } >log\n")
    assert not syntax.batchable(b"echo a\n}")
    assert not syntax.batchable(b"cat <<}\n")
    assert not syntax.batchable(b"a\0b")
    assert syntax.batchable(b'echo "${HOME}" $(date) {a,b}\n')


def test_one_batch_proves_many_clean_parts() -> None:
    """The fast path is real: 2,000 clean parts of many shapes in one bash process."""
    assert BASH is not None
    shapes = [
        'set -euo pipefail\necho "step {n}" >> "$LOG"\n',
        "for x in a b; do\n  echo $x{n}\ndone\n",
        "case $1 in\n  up) echo {n} ;;\n  *) exit 1 ;;\nesac\n",
        "cat <<EOF\nline {n}\nEOF\n",
        "if [ -f x{n} ]; then rm -f x{n}; fi\n",
        "echo $((1 + {n})) `date` $(ls | wc -l)\n",
    ]
    parts = [shapes[n % len(shapes)].replace("{n}", str(n)).encode() for n in range(2000)]
    assert all(syntax.batchable(p) for p in parts)
    assert syntax.batch_clean(BASH, parts)


def test_many_gives_the_one_by_one_verdicts(tmp_path: Path) -> None:
    assert BASH is not None
    items: list[tuple[Path, bytes | None]] = []
    for n in range(300):
        text = f"echo {n}\n" if n not in (17, 203) else f"echo {n}\nif true; then\n"
        path = tmp_path / f"{n}.sh"
        path.write_text(text)
        items.append((path, text.encode()))
    found = syntax.check_many(BASH, items)
    assert len(found) == 300
    bad = {path.name: verdict for path, verdict in found.items() if not verdict.ok}
    assert sorted(bad) == ["17.sh", "203.sh"]
    for name, verdict in bad.items():
        assert verdict == syntax.check_one(BASH, tmp_path / name)
        assert verdict.line == 3 and "unexpected end of file" in verdict.message


def test_prepare_then_problems_reports_what_the_shell_says(tmp_path: Path) -> None:
    """The script checks with `prepare` find the same problems as without it."""
    migrations = []
    for n in range(1, 41):
        directory = tmp_path / "migrations" / "jobs" / f"{n:04d}_step"
        directory.mkdir(parents=True)
        (directory / "up.sh").write_text("echo up\n" if n != 7 else 'echo "up\n')
        (directory / "down.sh").write_text("echo down\n" if n != 31 else "done\n")
        migrations.append(
            Migration(
                component="jobs",
                type="script",
                number=n,
                id=f"{n:04d}_step",
                path=directory,
                rel=f"migrations/jobs/{n:04d}_step",
                files=("down.sh", "up.sh"),
                checksum="",
                has_down=True,
                meta=None,
            )
        )
    before = [str(e) for m in migrations for e in checks.problems(m)]
    checks.prepare(migrations)
    after = [str(e) for m in migrations for e in checks.problems(m)]
    assert after == before
    assert len(after) == 2
    assert after[0].startswith("migrations/jobs/0007_step/up.sh:1:")
    assert after[1].startswith("migrations/jobs/0031_step/down.sh:1:")
