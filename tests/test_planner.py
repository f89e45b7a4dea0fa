"""The planner as a pure function: exact step lists for upgrades, downgrades, mixed moves,
no-ops, and every error it reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from releasectl.errors import ConstraintError, MultipleErrors, PlanError
from releasectl.models.release import Pin, Release
from releasectl.models.state import AppliedMigration, ComponentState, State
from releasectl.models.workspace import Component
from releasectl.planning.planner import Desired, PlanOptions, has_changes, make_plan
from releasectl.workspace.graph import CycleError, UnknownComponentError


@dataclass(frozen=True)
class Meta:
    description: str | None = None
    scope: tuple[str, ...] | None = None
    breaking: bool = False


@dataclass(frozen=True)
class Mig:
    number: int
    id: str
    checksum: str
    has_down: bool = True
    meta: Meta = field(default_factory=Meta)


def migs(
    component: str, count: int, *, no_down: set[int] | None = None, breaking: set[int] | None = None
) -> list[Mig]:
    return [
        Mig(
            n,
            f"{n:04d}_{component}_{n}",
            f"sum-{component}-{n}",
            has_down=n not in (no_down or set()),
            meta=Meta(breaking=n in (breaking or set())),
        )
        for n in range(1, count + 1)
    ]


COMPONENTS = {
    "redis": Component(type="redis"),
    "config": Component(type="kubernetes"),
    "policies": Component(type="cedar", needs=("config",)),
    "database": Component(type="sql"),
    "auth-service": Component(type="service", needs=("redis", "config", "policies", "database")),
    "policy-service": Component(type="service", needs=("policies",)),
}
MIGRATIONS = {
    "redis": migs("redis", 3),
    "config": migs("config", 2),
    "policies": migs("policies", 1),
    "database": migs("database", 2),
}


def state(versions: dict[str, int | str], release: str | None = None, serial: int = 4) -> State:
    comps = {}
    for name, version in versions.items():
        applied: tuple[AppliedMigration, ...] = ()
        if isinstance(version, int):
            applied = tuple(
                AppliedMigration(
                    id=m.id,
                    version=m.number,
                    checksum=m.checksum,
                    applied_at="2026-01-01T00:00:00Z",
                )
                for m in MIGRATIONS[name][:version]
            )
        comps[name] = ComponentState(version=version, applied=applied)
    return State(env="local", lineage="lin-1", serial=serial, release=release, components=comps)


def release(
    version: str,
    pins: dict[str, int | str],
    requires: dict[str, dict[str, str]] | None = None,
    upgrades_from: str | None = None,
) -> Release:
    return Release(
        version=version,
        upgrades_from=upgrades_from,
        components={
            n: Pin(version=v, requires=(requires or {}).get(n, {})) for n, v in pins.items()
        },
    )


def plan_for(
    rel: Release | None,
    st: State | None,
    *,
    versions: dict[str, int | str] | None = None,
    recorded: Release | None = None,
    allow_breaking: bool = False,
    components: dict[str, Component] | None = None,
    migrations: dict[str, list[Mig]] | None = None,
) -> list[tuple[str, str, object, object]]:
    desired = Desired(
        versions=versions
        if versions is not None
        else {n: p.version for n, p in rel.components.items()}
        if rel
        else {},
        release=rel,
        release_checksum="m" if rel else None,
        recorded_release=recorded,
    )
    plan = make_plan(
        env="local",
        components=components or COMPONENTS,
        migrations=migrations or MIGRATIONS,
        state=st,
        desired=desired,
        options=PlanOptions(allow_breaking=allow_breaking),
    )
    return [(s.component, s.action, s.from_, s.to) for s in plan.steps]


R110 = release(
    "1.1.0",
    {
        "redis": 2,
        "config": 2,
        "policies": 1,
        "database": 1,
        "policy-service": "1.1.0",
        "auth-service": "1.3.0",
    },
    requires={"auth-service": {"redis": ">=2", "policy-service": ">=1.1.0,<2.0.0"}},
    upgrades_from=">=1.0.0,<1.1.0",
)
R100 = release(
    "1.0.0",
    {
        "redis": 1,
        "config": 1,
        "policies": 1,
        "database": 1,
        "policy-service": "1.0.0",
        "auth-service": "1.0.0",
    },
    requires={"auth-service": {"redis": ">=1"}},
)


def test_fresh_environment_upgrades_in_dependency_order() -> None:
    assert plan_for(R110, None) == [
        ("config", "up", 0, 1),
        ("config", "up", 1, 2),
        ("database", "up", 0, 1),
        ("policies", "up", 0, 1),
        ("policy-service", "deploy", None, "1.1.0"),
        ("redis", "up", 0, 1),
        ("redis", "up", 1, 2),
        ("auth-service", "deploy", None, "1.3.0"),
    ]


def test_upgrade_from_recorded_release_runs_only_the_difference() -> None:
    st = state(
        {
            "redis": 1,
            "config": 1,
            "policies": 1,
            "database": 1,
            "policy-service": "1.0.0",
            "auth-service": "1.0.0",
        },
        release="1.0.0",
    )
    assert plan_for(R110, st, recorded=R100) == [
        ("config", "up", 1, 2),
        ("policy-service", "deploy", "1.0.0", "1.1.0"),
        ("redis", "up", 1, 2),
        ("auth-service", "deploy", "1.0.0", "1.3.0"),
    ]


def test_downgrade_walks_dependents_first_and_descends() -> None:
    st = state(
        {
            "redis": 2,
            "config": 2,
            "policies": 1,
            "database": 1,
            "policy-service": "1.1.0",
            "auth-service": "1.3.0",
        },
        release="1.1.0",
    )
    assert plan_for(R100, st, recorded=R110) == [
        ("auth-service", "deploy", "1.3.0", "1.0.0"),
        ("redis", "down", 2, 1),
        ("policy-service", "deploy", "1.1.0", "1.0.0"),
        ("config", "down", 2, 1),
    ]


def test_mixed_move_downgrades_before_upgrades() -> None:
    st = state(
        {
            "redis": 3,
            "config": 1,
            "policies": 1,
            "database": 2,
            "policy-service": "1.0.0",
            "auth-service": "1.0.0",
        }
    )
    rel = release(
        "2.0.0",
        {
            "redis": 1,
            "config": 2,
            "policies": 1,
            "database": 1,
            "policy-service": "1.0.0",
            "auth-service": "1.0.1",
        },
    )
    assert plan_for(rel, st) == [
        ("redis", "down", 3, 2),
        ("redis", "down", 2, 1),
        ("database", "down", 2, 1),
        ("config", "up", 1, 2),
        ("auth-service", "deploy", "1.0.0", "1.0.1"),
    ]


def test_no_changes_when_state_matches() -> None:
    st = state(
        {
            "redis": 2,
            "config": 2,
            "policies": 1,
            "database": 1,
            "policy-service": "1.1.0",
            "auth-service": "1.3.0",
        },
        release="1.1.0",
    )
    desired = Desired(
        versions={n: p.version for n, p in R110.components.items()},
        release=R110,
        release_checksum="m",
    )
    plan = make_plan(
        env="local", components=COMPONENTS, migrations=MIGRATIONS, state=st, desired=desired
    )
    assert plan.steps == [] and plan.rollback == []
    assert not has_changes(plan)


def test_rollback_is_the_reverse_of_the_steps() -> None:
    desired = Desired(versions={"redis": 2}, release=None)
    plan = make_plan(
        env="local", components=COMPONENTS, migrations=MIGRATIONS, state=None, desired=desired
    )
    assert [(s.action, s.from_, s.to, s.migration) for s in plan.rollback] == [
        ("down", 2, 1, "0002_redis_2"),
        ("down", 1, 0, "0001_redis_1"),
    ]


def test_digest_depends_on_state_serial_and_checksums() -> None:
    def digest(st: State, checksum: str) -> str:
        changed = {"redis": [Mig(1, "0001_redis_1", checksum)]}
        return make_plan(
            env="local",
            components={"redis": Component(type="redis")},
            migrations=changed,
            state=st,
            desired=Desired(versions={"redis": 1}),
        ).digest

    base = state({}, serial=1)
    assert digest(base, "a") == digest(base, "a")
    assert digest(base, "a") != digest(base, "b")
    assert digest(base, "a") != digest(state({}, serial=2), "a")


def test_cycle_is_reported_with_its_members() -> None:
    comps = {
        "a": Component(type="sql", needs=("c",)),
        "b": Component(type="sql", needs=("a",)),
        "c": Component(type="sql", needs=("b",)),
        "d": Component(type="sql"),
    }
    with pytest.raises(CycleError) as exc:
        plan_for(None, None, versions={"a": 0}, components=comps, migrations={})
    assert exc.value.cycle == ["a", "c", "b", "a"]


def test_unknown_component_in_needs() -> None:
    comps = {"a": Component(type="sql", needs=("ghost",))}
    with pytest.raises(UnknownComponentError, match="'a' needs unknown component 'ghost'"):
        plan_for(None, None, versions={"a": 0}, components=comps, migrations={})


def test_unknown_component_in_release() -> None:
    with pytest.raises(PlanError, match="unknown component 'cache'"):
        plan_for(None, None, versions={"cache": 1})


def test_version_without_migration() -> None:
    with pytest.raises(PlanError, match="'redis': version 5 has no migration"):
        plan_for(None, None, versions={"redis": 5})


def test_missing_down_on_downgrade_path() -> None:
    migrations = {**MIGRATIONS, "redis": migs("redis", 3, no_down={2})}
    with pytest.raises(
        PlanError, match=r"cannot go down from 3 to 0: no down part in 0002_redis_2"
    ):
        plan_for(None, state({"redis": 3}), versions={"redis": 0}, migrations=migrations)


def test_missing_down_off_the_path_is_fine() -> None:
    migrations = {**MIGRATIONS, "redis": migs("redis", 3, no_down={1})}
    steps = plan_for(None, state({"redis": 3}), versions={"redis": 2}, migrations=migrations)
    assert steps == [("redis", "down", 3, 2)]


def test_bad_semantic_version() -> None:
    with pytest.raises(PlanError, match=r"'auth-service': '1.3' is not a semantic version"):
        plan_for(None, None, versions={"auth-service": "1.3"})


def test_requires_violated_in_desired_state() -> None:
    rel = release(
        "1.2.0",
        {
            "redis": 1,
            "config": 2,
            "policies": 1,
            "database": 1,
            "policy-service": "1.1.0",
            "auth-service": "1.3.0",
        },
        requires={"auth-service": {"redis": ">=2"}},
    )
    with pytest.raises(
        ConstraintError,
        match=r"auth-service 1.3.0 requires redis >=2 but redis "
        r"is at 1",
    ):
        plan_for(rel, None)


def test_requires_checked_after_every_step() -> None:
    # Recorded auth-service 1.0.0 needs redis < 2; the new release moves redis first.
    recorded = release(
        "1.0.0", {"redis": 1, "auth-service": "1.0.0"}, requires={"auth-service": {"redis": "<2"}}
    )
    comps = {
        "redis": Component(type="redis"),
        "auth-service": Component(type="service", needs=("redis",)),
    }
    rel = release("1.1.0", {"redis": 2, "auth-service": "1.1.0"})
    st = State(
        env="local",
        lineage="l",
        serial=1,
        release="1.0.0",
        components={
            "redis": ComponentState(version=1),
            "auth-service": ComponentState(version="1.0.0"),
        },
    )
    with pytest.raises(
        ConstraintError,
        match=r"step 1 \(redis 1 -> 2 \(0002_redis_2\)\) would "
        r"pass through an incompatible state",
    ):
        plan_for(rel, st, recorded=recorded, components=comps)


def test_upgrades_from_must_admit_recorded_release() -> None:
    st = state({"redis": 1}, release="0.9.0")
    with pytest.raises(ConstraintError, match=r"does not upgrade from the recorded release 0.9.0"):
        plan_for(R110, st)


def test_major_bump_needs_allow_breaking() -> None:
    st = state({"auth-service": "1.3.0"})
    with pytest.raises(
        ConstraintError,
        match=r"breaking change needs --allow-breaking: auth-service 1\.3\.0 -> 2\.0\.0",
    ):
        plan_for(None, st, versions={"auth-service": "2.0.0"})
    assert plan_for(None, st, versions={"auth-service": "2.0.0"}, allow_breaking=True) == [
        ("auth-service", "deploy", "1.3.0", "2.0.0")
    ]


def test_breaking_migration_needs_allow_breaking() -> None:
    migrations = {**MIGRATIONS, "database": migs("database", 2, breaking={2})}
    with pytest.raises(ConstraintError, match=r"database 1 -> 2 \(0002_database_2\)"):
        plan_for(None, state({"database": 1}), versions={"database": 2}, migrations=migrations)


def test_several_errors_are_reported_together() -> None:
    with pytest.raises(MultipleErrors) as exc:
        plan_for(None, None, versions={"redis": 9, "database": 7})
    assert len(exc.value.errors) == 2


def test_reapply_runs_down_then_up() -> None:
    desired = Desired(versions={"redis": 2})
    plan = make_plan(
        env="local",
        components=COMPONENTS,
        migrations=MIGRATIONS,
        state=state({"redis": 2}),
        desired=desired,
        options=PlanOptions(reapply={"redis"}),
    )
    assert [(s.action, s.from_, s.to) for s in plan.steps] == [("down", 2, 1), ("up", 1, 2)]


# --- a component added after older releases: the older manifests do not name it -----------

# `hooks` (script migrations) and `notifier` (a service) came with release 1.2.0; 1.1.0 and
# older do not name them, which means "not deployed in that release".
GROWN = {
    **COMPONENTS,
    "hooks": Component(type="script", needs=("auth-service",)),
    "notifier": Component(type="service", needs=("hooks",)),
}
GROWN_MIGRATIONS = {**MIGRATIONS, "hooks": migs("hooks", 2)}
R110_VERSIONS: dict[str, int | str] = {
    "redis": 2,
    "config": 2,
    "policies": 1,
    "database": 1,
    "policy-service": "1.1.0",
    "auth-service": "1.3.0",
}
R120 = release(
    "1.2.0",
    {**R110_VERSIONS, "hooks": 2, "notifier": "0.1.0"},
    requires={"auth-service": {"redis": ">=2", "policy-service": ">=1.1.0,<2.0.0"}},
    upgrades_from=">=1.1.0,<1.2.0",
)


def grown_state(versions: dict[str, int | str], release: str) -> State:
    base = state({k: v for k, v in versions.items() if k in COMPONENTS}, release=release)
    extra = {k: ComponentState(version=v) for k, v in versions.items() if k not in COMPONENTS}
    return base.model_copy(update={"components": {**base.components, **extra}})


def test_rolling_back_to_a_release_without_a_component_takes_it_away_dependents_first() -> None:
    st = grown_state({**R110_VERSIONS, "hooks": 2, "notifier": "0.1.0"}, "1.2.0")
    assert plan_for(R110, st, recorded=R120, components=GROWN, migrations=GROWN_MIGRATIONS) == [
        ("notifier", "deploy", "0.1.0", None),
        ("hooks", "down", 2, 1),
        ("hooks", "down", 1, 0),
    ]


def test_upgrading_to_the_release_that_adds_a_component_deploys_it_last() -> None:
    st = grown_state(R110_VERSIONS, "1.1.0")
    assert plan_for(R120, st, recorded=R110, components=GROWN, migrations=GROWN_MIGRATIONS) == [
        ("hooks", "up", 0, 1),
        ("hooks", "up", 1, 2),
        ("notifier", "deploy", None, "0.1.0"),
    ]


def test_an_older_release_on_a_fresh_environment_leaves_the_newer_component_out() -> None:
    assert plan_for(R110, None, components=GROWN, migrations=GROWN_MIGRATIONS) == [
        ("config", "up", 0, 1),
        ("config", "up", 1, 2),
        ("database", "up", 0, 1),
        ("policies", "up", 0, 1),
        ("policy-service", "deploy", None, "1.1.0"),
        ("redis", "up", 0, 1),
        ("redis", "up", 1, 2),
        ("auth-service", "deploy", None, "1.3.0"),
    ]


def test_taking_a_component_away_needs_its_down_parts() -> None:
    st = grown_state({**R110_VERSIONS, "hooks": 2, "notifier": "0.1.0"}, "1.2.0")
    migrations = {**GROWN_MIGRATIONS, "hooks": migs("hooks", 2, no_down={1})}
    with pytest.raises(PlanError, match=r"'hooks': cannot go down from 2 to 0: no down part in "):
        plan_for(R110, st, recorded=R120, components=GROWN, migrations=migrations)


def test_a_release_cannot_require_a_component_it_does_not_deploy() -> None:
    rel = release("1.1.1", R110_VERSIONS, requires={"auth-service": {"hooks": ">=1"}})
    with pytest.raises(ConstraintError, match=r"auth-service 1.3.0 requires hooks >=1 but hooks"):
        plan_for(rel, None, components=GROWN, migrations=GROWN_MIGRATIONS)


def test_a_per_component_plan_moves_only_the_component_it_names() -> None:
    st = grown_state({**R110_VERSIONS, "hooks": 2, "notifier": "0.1.0"}, "1.2.0")
    assert plan_for(
        None, st, versions={"redis": 1}, components=GROWN, migrations=GROWN_MIGRATIONS
    ) == [("redis", "down", 2, 1)]
