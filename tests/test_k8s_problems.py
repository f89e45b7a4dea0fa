"""Static checks of Kubernetes migrations (what `validate` reports): parse errors, object shape,
duplicates, literal secrets, each with file and line, and never the secret itself."""

from __future__ import annotations

from pathlib import Path

from releasectl.planning import checks
from releasectl.targets.kubernetes import checks as kubernetes_checks
from releasectl.targets.kubernetes.objects import load_snapshot, split_documents
from releasectl.workspace import Workspace
from releasectl.workspace.catalogue import Migration
from tests.conftest import run_cli
from tests.k8semu.workspace import write_migrations

AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"  # split so the repository itself holds no key
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----"


def problems_of(tmp_path: Path, files: dict[str, str]) -> tuple[Migration, list[str]]:
    found = write_migrations(tmp_path, [files])
    migration = found.migrations[0]
    return migration, [str(e) for e in kubernetes_checks.problems(migration)]


def test_the_example_migrations_are_clean() -> None:
    workspace = Workspace.load(Path(__file__).resolve().parent.parent)
    found = workspace.catalogue.of("config")
    assert found is not None and len(found.migrations) == 2
    errors = checks.migration_problems(workspace, found.migrations)
    assert [str(e) for e in errors] == []
    objects, _ = load_snapshot(found.migrations[1])
    kinds = {o.kind for o in objects}
    assert kinds == {"ConfigMap", "ExternalSecret"}


def test_multi_document_files_keep_their_line_numbers(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# two\napiVersion: v1\n"
    assert [start for start, _ in split_documents(text)] == [0, 3]
    migration, errors = problems_of(
        tmp_path,
        {
            "objects.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: first}
            data: {A: "1"}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: second}
            data:
              COUNT: 3
            """
        },
    )
    assert errors == [
        f"{migration.rel}/objects.yaml:10: data.COUNT: ConfigMap values must be strings (quote it)"
    ]


def test_shape_duplicates_and_parse_errors(tmp_path: Path) -> None:
    migration, errors = problems_of(
        tmp_path,
        {
            "a.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: app}
            ---
            kind: ConfigMap
            metadata: {name: Bad_Name}
            """,
            "b.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: app
            """,
            "c.yaml": "apiVersion: v1\nkind: [unclosed\n",
            "d.yaml": "- just\n- a list\n",
        },
    )
    rel = migration.rel
    assert f"{rel}/a.yaml:5: apiVersion: missing `apiVersion` (every object needs one)" in errors
    assert any(
        e.startswith(f"{rel}/a.yaml:6: metadata.name: 'Bad_Name' is not a valid") for e in errors
    )
    duplicate = "duplicate object ConfigMap/app"
    assert (
        f"{rel}/b.yaml:4: metadata.name: {duplicate} (first declared at {rel}/a.yaml:3)" in errors
    )
    assert any(e.startswith(f"{rel}/c.yaml:") and "invalid YAML" in e for e in errors)
    assert f"{rel}/d.yaml:1: expected a Kubernetes object (a mapping)" in errors


def test_literal_secret_values_are_refused_without_repeating_them(tmp_path: Path) -> None:
    migration, errors = problems_of(
        tmp_path,
        {
            "secret.yaml": """
            apiVersion: v1
            kind: Secret
            metadata: {name: app}
            stringData:
              GOOD: ${env:APP_GOOD}
              PASSWORD: hunter2-but-longer
            data:
              ALSO_GOOD: "${env:APP_OTHER}"
              PARTIAL: "prefix-${env:APP_X}"
            """
        },
    )
    rel = f"{migration.rel}/secret.yaml"
    assert [e.split(": Secret app:")[0] for e in errors] == [
        f"{rel}:6: stringData.PASSWORD",
        f"{rel}:9: data.PARTIAL",
    ]
    assert not any("hunter2" in e or "prefix-" in e for e in errors)


def test_planted_keys_are_found_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "releasectl.yaml").write_text(
        "apiVersion: releasectl/v1\nkind: Workspace\nname: planted\n"
        "components:\n  config: {type: kubernetes}\n"
        "environments:\n  local:\n    targets:\n      config: {mode: render, path: out}\n"
    )
    write_migrations(
        tmp_path,
        [
            {
                "app.yaml": f"""
                apiVersion: v1
                kind: ConfigMap
                metadata: {{name: app}}
                data:
                  AWS_ACCESS_KEY_ID: "{AWS_KEY}"
                """,
                "tls.yaml": f"""
                apiVersion: v1
                kind: Secret
                metadata: {{name: tls}}
                stringData:
                  tls.key: |
                    {PEM}
                    MIIEowIBAAKCAQEA
                """,
            }
        ],
    )
    workspace = Workspace.load(tmp_path)
    found = workspace.catalogue.of("config")
    assert found is not None
    errors = [str(e) for e in checks.migration_problems(workspace, found.migrations)]
    rel = "migrations/config/0001_v1"
    assert any(
        e.startswith(f"{rel}/app.yaml:5: literal secret (AWS access key id)") for e in errors
    )
    assert any(e.startswith(f"{rel}/tls.yaml:6: literal secret (private key)") for e in errors)
    assert any(e.startswith(f"{rel}/tls.yaml:5: stringData.tls.key: Secret tls") for e in errors)
    text = "\n".join(errors)
    assert AWS_KEY not in text and "MIIEowIBAAKCAQEA" not in text and PEM not in text


def test_validate_reports_a_planted_key_without_printing_it(example: Path) -> None:
    planted = example / "migrations/config/0002_security_monitoring/monitoring.yaml"
    text = planted.read_text()
    planted.write_text(
        text.replace("  thresholds.env: |\n", f'  AWS_KEY: "{AWS_KEY}"\n  thresholds.env: |\n')
    )
    line = planted.read_text().splitlines().index(f'  AWS_KEY: "{AWS_KEY}"') + 1
    for fmt in ("text", "json"):
        result = run_cli("validate", "--format", fmt, cwd=example)
        assert result.code == 1, result
        output = result.out + result.err
        assert f"migrations/config/0002_security_monitoring/monitoring.yaml:{line}:" in output
        assert "AWS access key id" in output
        assert AWS_KEY not in output
