"""The planner checks `requires` after every step incrementally; these tests compare it with
the direct check (every constraint after every step) on many random workspaces, and plan a
large workspace to be sure the work stays linear."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest

from releasectl.errors import ConstraintError, ReleasectlError
from releasectl.models import constraints
from releasectl.models.plan import Step
from releasectl.models.release import Pin, Release
from releasectl.models.state import ComponentState, State
from releasectl.models.workspace import Component
from releasectl.planning.planner import Desired, PlanOptions, make_plan
from tests.test_planner import Mig


def reference_problem(
    components: Mapping[str, Component],
    current: Mapping[str, int | str | None],
    targets: Mapping[str, int | str | None],
    steps: Sequence[Step],
    manifests: Sequence[Release],
) -> str | None:
    """The direct check: every constraint in the desired state, then after every step."""

    def violations(versions: Mapping[str, int | str | None]) -> list[str]:
        found: list[str] = []
        for name, version in versions.items():
            if version is None:
                continue
            for manifest in manifests:
                pin = manifest.components.get(name)
                if pin is None or str(pin.version) != str(version):
                    continue
                for other, text in sorted(pin.requires.items()):
                    if other not in components:
                        continue
                    kind: constraints.Kind = (
                        "semver" if components[other].type == "service" else "int"
                    )
                    have = versions.get(other)
                    if have is None or not constraints.parse(text, kind).admits(have):
                        shown = "not deployed" if have is None else f"at {have}"
                        found.append(
                            f"{name} {version} requires {other} {text} "
                            f"but {other} is {shown} (release {manifest.version})"
                        )
                break
        return found

    final = {**current, **targets}
    problems = violations(final)
    if problems:
        return "the desired state violates `requires`: " + "; ".join(problems)
    versions = dict(current)
    for index, step in enumerate(steps, start=1):
        versions[step.component] = step.to
        problems = violations(versions)
        if problems:
            what = f"{step.component} {step.from_} -> {step.to}"
            if step.migration:
                what += f" ({step.migration})"
            return f"step {index} ({what}) would pass through an incompatible state: " + (
                "; ".join(problems)
            )
    return None


def scenario(
    rng: random.Random,
) -> tuple[dict[str, Component], dict[str, list[Mig]], Desired, State]:
    names = [f"c{i}" for i in range(rng.randint(2, 7))]
    components: dict[str, Component] = {}
    migrations: dict[str, list[Mig]] = {}
    for index, name in enumerate(names):
        needs = tuple(rng.sample(names[:index], rng.randint(0, min(2, index))))
        if rng.random() < 0.3:
            components[name] = Component(type="service", needs=needs)
        else:
            components[name] = Component(type="sql", needs=needs)
            migrations[name] = [
                Mig(n, f"{n:04d}_{name}", f"sum-{name}-{n}") for n in range(1, rng.randint(2, 6))
            ]

    def pins(version: str) -> dict[str, Pin]:
        out: dict[str, Pin] = {}
        for name, comp in components.items():
            if comp.type == "service":
                ver: int | str = rng.choice(["1.0.0", "1.1.0", "2.0.0"])
            else:
                ver = rng.randint(0, len(migrations[name]))
            requires = {}
            for other in rng.sample(names, rng.randint(0, 2)):
                if other == name:
                    continue
                if components[other].type == "service":
                    requires[other] = rng.choice([">=1.0.0", "<2.0.0", "^1.1"])
                else:
                    requires[other] = rng.choice([">=1", "<=2", ">=2", "==1"])
            out[name] = Pin(version=ver, requires=requires)
        return out

    recorded = Release(version="1.0.0", components=pins("1.0.0"))
    release = Release(version="1.1.0", components=pins("1.1.0"))
    state = State(
        env="e",
        lineage="l",
        serial=1,
        release="1.0.0",
        components={
            name: ComponentState(version=pin.version) for name, pin in recorded.components.items()
        },
    )
    desired = Desired(
        versions={name: pin.version for name, pin in release.components.items()},
        release=release,
        release_checksum="m",
        recorded_release=recorded,
    )
    return components, migrations, desired, state


def test_incremental_checks_agree_with_the_direct_check() -> None:
    rng = random.Random(20261125)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(400):
        components, migrations, desired, state = scenario(rng)
        try:
            plan = make_plan(
                env="e",
                components=components,
                migrations=migrations,
                state=state,
                desired=desired,
                options=PlanOptions(allow_breaking=True),
            )
        except ConstraintError as exc:
            outcomes["refused"] += 1
            # rebuild the steps the planner checked: the same plan with constraints ignored
            relaxed = Desired(versions=desired.versions, release_checksum="m")
            steps = make_plan(
                env="e",
                components=components,
                migrations=migrations,
                state=state,
                desired=relaxed,
                options=PlanOptions(allow_breaking=True),
            ).steps
            current = {
                n: (state.components[n].version if n in state.components else None)
                for n in components
            }
            targets = dict(desired.versions)
            manifests = [m for m in (desired.release, desired.recorded_release) if m]
            expected = reference_problem(components, current, targets, steps, manifests)
            assert str(exc) == expected
            continue
        except ReleasectlError:
            continue  # a release that does not upgrade from the recorded one, and the like
        outcomes["ok"] += 1
        current = {n: state.components[n].version for n in components}
        manifests = [m for m in (desired.release, desired.recorded_release) if m]
        assert (
            reference_problem(components, current, desired.versions, plan.steps, manifests) is None
        )
    assert outcomes["ok"] > 20 and outcomes["refused"] > 20, outcomes


@pytest.mark.parametrize("count", [20_000])
def test_a_large_plan_is_planned(count: int) -> None:
    """200 components with 100 migrations each and a service that requires all of them."""
    components = {f"db{i:03d}": Component(type="sql") for i in range(200)}
    components["app"] = Component(type="service", needs=tuple(components))
    migrations = {
        name: [Mig(n, f"{n:04d}_{name}", f"sum-{n}") for n in range(1, count // 200 + 1)]
        for name in components
        if name != "app"
    }
    requires = dict.fromkeys(migrations, f">={count // 200}")
    release = Release(
        version="1.0.0",
        components={
            **{name: Pin(version=count // 200) for name in migrations},
            "app": Pin(version="1.0.0", requires=requires),
        },
    )
    desired = Desired(
        versions={n: p.version for n, p in release.components.items()},
        release=release,
        release_checksum="m",
    )
    plan = make_plan(
        env="e", components=components, migrations=migrations, state=None, desired=desired
    )
    assert len(plan.steps) == count + 1
    assert plan.steps[-1].component == "app" and plan.steps[-1].action == "deploy"
    assert plan.rollback[0].component == "app"
    assert plan.steps[0].model_dump(by_alias=True) == Step(
        component="db000",
        type="sql",
        action="up",
        **{"from": 0},
        to=1,
        migration="0001_db000",
        checksum="sum-1",
        backup=False,
        breaking=False,
        description=None,
    ).model_dump(by_alias=True)
