"""Cedar policy sets: how long the checks take that `validate`, `plan` and every cedar step run,
and what one authorization decision costs.

    .venv/bin/python bench/cedar_policies.py

Measures (median of 5, wall time, in-process unless said otherwise):
- the example snapshot (migrations/policies/0001_rbac_framework): parse, validate, run its tests;
- a generated set of POLICIES policies in 20 files with TESTS tests: the same, plus locating a
  syntax error in the last policy of a 1,000-policy file (the prefix bisection);
- `authz.decide` on the example workspace (warm), and `releasectl authz test` as a new process.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from releasectl.cedarlib.snapshot import Snapshot  # noqa: E402

POLICIES = 2000
TESTS = 500
FILES = 20


def median(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def generated(root: Path) -> Snapshot:
    schema = (
        "entity Role;\nentity User in [Role] { level: Long };\nentity Doc { owner: User };\n"
        'action "read", "write" appliesTo { principal: [User], resource: [Doc], '
        "context: { mfa: Bool } };\n"
    )
    (root / "schema.cedarschema").write_text(schema)
    per_file = POLICIES // FILES
    for f in range(FILES):
        lines = []
        for p in range(per_file):
            n = f * per_file + p
            effect = "forbid" if n % 10 == 0 else "permit"
            lines.append(
                f'@id("p{n}")\n{effect} (principal in Role::"r{n}", action == Action::"read", '
                f"resource)\nwhen {{ principal.level > {n % 7} && context.mfa }};\n"
            )
        (root / f"f{f:02d}.cedar").write_text("\n".join(lines))
    tests = ["entities:", "  - {uid: {type: Role, id: r1}}"]
    tests.append(
        "  - {uid: {type: User, id: u}, attrs: {level: 9}, parents: [{type: Role, id: r1}]}"
    )
    tests.append("  - {uid: {type: Doc, id: d}, attrs: {owner: {__entity: {type: User, id: u}}}}")
    tests.append("tests:")
    for t in range(TESTS):
        tests.append(
            f"  - name: t{t}\n    principal: 'User::\"u\"'\n    action: 'Action::\"read\"'\n"
            f"    resource: 'Doc::\"d\"'\n    context: {{mfa: {'true' if t % 2 else 'false'}}}\n"
            f"    expect: {'allow' if t % 2 else 'deny'}"
        )
    (root / "tests").mkdir()
    (root / "tests" / "t.yaml").write_text("\n".join(tests) + "\n")
    return Snapshot.from_dir(root, "bench")


def main() -> None:
    example = Snapshot.from_dir(
        REPO / "migrations/policies/0001_rbac_framework", "migrations/policies/0001_rbac_framework"
    )
    compiled = example.compile()
    print(f"example: {len(compiled.policies)} policies, {len(compiled.run_tests())} tests")
    print(f"  compile (parse + validate + load tests): {median(example.compile) * 1000:.1f} ms")
    print(f"  run tests: {median(compiled.run_tests) * 1000:.1f} ms")
    print(f"  problems() (everything validate runs): {median(example.problems) * 1000:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        snap = generated(Path(tmp))
        big = snap.compile()
        assert all(o.passed for o in big.run_tests())
        print(f"generated: {len(big.policies)} policies in {FILES} files, {TESTS} tests")
        print(f"  compile: {median(snap.compile, 3) * 1000:.0f} ms")
        print(f"  run tests: {median(big.run_tests, 3) * 1000:.0f} ms")
        last = Path(tmp) / "f00.cedar"
        text = "\n".join(
            (Path(tmp) / f"f{f:02d}.cedar").read_text() for f in range(10)
        )  # 1,000 policies
        last.write_text(text.rstrip().rstrip(";") + " +;\n")
        for f in range(1, 10):
            (Path(tmp) / f"f{f:02d}.cedar").unlink()
        broken = Snapshot.from_dir(Path(tmp), "bench")
        errors = broken.problems()
        print(f"  syntax error at the end of a 1,000-policy file: {errors[0]}")
        print(f"  locating it: {median(broken.problems, 3) * 1000:.0f} ms")

    from releasectl import authz
    from releasectl.workspace import Workspace

    ws = Workspace.load(REPO)
    authz.decide(ws, "prod", actor="bob", action="apply", approvals=["carol"])
    warm = median(
        lambda: authz.decide(ws, "prod", actor="bob", action="apply", approvals=["carol"]), 20
    )
    print(f"authz.decide (warm, policy re-read each call): {warm * 1000:.1f} ms")
    cold = median(
        lambda: subprocess.run(
            [sys.executable, "-m", "releasectl", "authz", "test"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ),
        3,
    )
    print(f"releasectl authz test (new process, {len(authz.run_tests(ws))} tests): {cold:.2f} s")


if __name__ == "__main__":
    main()
