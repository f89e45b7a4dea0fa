"""Kubernetes state backend: the state in a ConfigMap, the history in chunked ConfigMaps and
the lock in a `coordination.k8s.io/v1` Lease, all in `state.namespace`.

    <name>                     ConfigMap, data["state.json"]        (name: releasectl-state-<env>)
    <name>-history-000001...   ConfigMaps, data["history.jsonl"], each at most ~512 KiB
    <name>-lock                Lease: holderIdentity = lock id, the LockInfo JSON in an annotation

Every write is a compare-and-swap on the object's resourceVersion (PUT with the version read;
409 means someone else wrote in between), and a state write also checks the serial, so two
runners can never both record a step. The Lease follows client-go's leader election: a lease
whose renewTime + leaseDurationSeconds has passed is expired and may be taken over; while held,
a daemon thread renews it every ttl/3; releasing clears `holderIdentity` (the Lease stays, so
`leaseTransitions` keeps counting and serves as a fencing token). Expiry compares the holder's
renewTime with this machine's clock: runners' clocks must agree to well under the ttl.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from releasectl.errors import InputError, Location, LockHeldError, StaleError, TargetError
from releasectl.models.state import State
from releasectl.state.base import RENEW_DEADLINE, HeldLock, Lock, LockInfo, parse_state

if TYPE_CHECKING:
    from releasectl.models.workspace import StateConfig
    from releasectl.workspace import Workspace

STATE_KEY = "state.json"
HISTORY_KEY = "history.jsonl"
HISTORY_CHUNK_BYTES = 512 * 1024  # a ConfigMap holds at most 1 MiB
LOCK_ANNOTATION = "releasectl.dev/lock"
ENV_LABEL = "releasectl.dev/env"
CAS_ATTEMPTS = 50

Obj = dict[str, Any]


def _micro(moment: datetime) -> str:
    """A Kubernetes MicroTime."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)


class LeaseLock(HeldLock):
    """A held Lease; renewed in the background until released."""

    def __init__(
        self,
        backend: KubernetesBackend,
        info: LockInfo,
        ttl: float,
        taken_at: float | None = None,
    ) -> None:
        self.backend = backend
        self.info = info
        self.duration = max(1, math.ceil(ttl))
        self.renewed_at = time.monotonic() if taken_at is None else taken_at
        self.lost = False
        self.taken_over: LockInfo | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"releasectl-lease-{backend.env}", daemon=True
        )
        self._thread.start()

    def valid_until(self) -> float | None:
        """Last renewal the API server confirmed (timed from when it was sent) + RENEW_DEADLINE
        of the duration: the engine stops a step there, before the Lease can be taken."""
        return self.renewed_at + (0.0 if self.lost else RENEW_DEADLINE * self.duration)

    def _renew_loop(self) -> None:
        interval = max(self.duration / 4, 0.2)
        wait = interval
        while not self._stop.wait(wait):
            sent = time.monotonic()
            try:
                renewed = self.backend._renew(self.info.id, self.duration)
            except TargetError:  # a blip: try again soon; valid_until() stops the step in time
                wait = max(interval / 4, 0.05)
                continue
            if renewed is False:
                self.lost = True
                return
            if renewed:
                self.renewed_at = sent
            wait = interval

    def check(self) -> None:
        lease = self.backend._lease()
        holder = _holder(lease)
        if self.lost or holder != self.info.id:
            held = self.backend.current_lock()
            raise LockHeldError(
                f"lost the lock of environment {self.backend.env!r}: "
                + (held.describe() if held else "it expired or was removed")
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)
        self.backend._release(self.info.id)


def _holder(lease: Obj | None) -> str | None:
    if lease is None:
        return None
    holder = (lease.get("spec") or {}).get("holderIdentity")
    return str(holder) if holder else None


def _expired(lease: Obj, now: datetime) -> bool:
    spec = lease.get("spec") or {}
    renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
    if renewed is None:
        return True
    duration = spec.get("leaseDurationSeconds")
    seconds = float(duration) if isinstance(duration, int | float) else 0.0
    return now > renewed + timedelta(seconds=seconds)


def _lock_info(lease: Obj) -> LockInfo:
    """The LockInfo a releasectl holder left in the Lease, or one made from its spec."""
    spec = lease.get("spec") or {}
    raw = ((lease.get("metadata") or {}).get("annotations") or {}).get(LOCK_ANNOTATION)
    if raw:
        try:
            info = LockInfo(**json.loads(raw))
            if info.id == spec.get("holderIdentity"):
                return info
        except (ValueError, TypeError):
            pass
    holder = str(spec.get("holderIdentity") or "unknown")
    return LockInfo(
        id=holder,
        env="?",
        holder=holder,
        operation="unknown",
        host="?",
        pid=0,
        since=str(spec.get("acquireTime") or "?"),
        token=spec.get("leaseTransitions"),
    )


class KubernetesBackend:
    def __init__(
        self,
        workspace: Workspace,
        env: str,
        config: StateConfig,
        *,
        history_chunk_bytes: int = HISTORY_CHUNK_BYTES,
    ) -> None:
        self.env = env
        self.namespace = config.namespace or "default"
        self.name = config.name or f"releasectl-state-{env}"
        self.lease_name = f"{self.name}-lock"
        self.root = workspace.root
        self.settings = SimpleNamespace(
            context=self._resolve(workspace, "context", config.context),
            kubeconfig=self._resolve(workspace, "kubeconfig", config.kubeconfig),
        )
        self.history_chunk_bytes = history_chunk_bytes
        self._client: Any = None
        self._last_chunk = 0  # highest history chunk known to exist (0: not looked yet)

    def _resolve(self, workspace: Workspace, field: str, value: str | None) -> str | None:
        if value is None or "${" not in value:
            return value
        return workspace.resolve(self.env, ("state", field), value)

    @property
    def client(self) -> Any:
        if self._client is None:
            from releasectl.clients.kubernetes import api_client

            self._client = api_client(self.settings, root=self.root)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def describe(self) -> str:
        where = f"ConfigMap {self.namespace}/{self.name}"
        return where + (f" (context {self.settings.context})" if self.settings.context else "")

    def describe_history(self) -> str:
        where = f"ConfigMaps {self.namespace}/{self.name}-history-*"
        return where + (f" (context {self.settings.context})" if self.settings.context else "")

    def _meta(self, name: str, **extra: Any) -> Obj:
        from releasectl.clients.kubernetes import MANAGED_BY, MANAGED_BY_LABEL

        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, ENV_LABEL: self.env},
            **extra,
        }

    def _get(self, kind: str, name: str) -> Obj | None:
        from releasectl.clients.kubernetes import read_object

        api_version = "coordination.k8s.io/v1" if kind == "Lease" else "v1"
        return read_object(self.client, api_version, kind, name, self.namespace)

    # --- state --------------------------------------------------------------------------

    def read(self) -> State | None:
        live = self._get("ConfigMap", self.name)
        return None if live is None else self._parse(live)

    def _parse(self, live: Obj) -> State:
        raw = (live.get("data") or {}).get(STATE_KEY)
        if raw is None:
            raise InputError(
                f"recorded state is unreadable: no `{STATE_KEY}` key",
                location=Location(self.describe()),
            )
        return parse_state(raw, self.describe())

    def write(self, state: State, lock: Lock | None) -> None:
        if lock is not None:
            lock.check()
        live = self._get("ConfigMap", self.name)
        old = None if live is None else self._parse(live)
        expected = (old.serial + 1) if old else state.serial
        if state.serial != expected or (old is not None and old.lineage != state.lineage):
            raise StaleError(
                f"state of {self.env!r} moved on while writing (serial {state.serial}, "
                f"recorded {old.serial if old else 'none'})"
            )
        if not self._put(state, live):
            raise StaleError(
                f"state of {self.env!r} was written by someone else while writing serial "
                f"{state.serial} (resourceVersion conflict on {self.describe()})"
            )

    def rewrite(self, state: State) -> bool:
        live = self._get("ConfigMap", self.name)
        old = None if live is None else self._parse(live)
        same = old is not None and (old.lineage, old.serial) == (state.lineage, state.serial)
        return same and self._put(state, live)

    def _put(self, state: State, live: Obj | None) -> bool:
        """Create the state ConfigMap, or replace `live` if nobody wrote it since (False)."""
        from releasectl.clients.kubernetes import KubeConflict, create_object, replace_object

        text = state.model_dump_json(by_alias=True, indent=2, exclude_none=False) + "\n"
        meta = self._meta(self.name)
        if live is not None:
            meta["resourceVersion"] = live["metadata"]["resourceVersion"]
        body: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
        body["data"] = {STATE_KEY: text}
        try:
            if live is None:
                create_object(self.client, body, self.namespace)
            else:
                replace_object(self.client, body, self.namespace)
        except KubeConflict:
            return False
        return True

    # --- lock ---------------------------------------------------------------------------

    def _lease(self) -> Obj | None:
        return self._get("Lease", self.lease_name)

    def _lease_body(self, info: LockInfo, duration: int, transitions: int, acquired: str) -> Obj:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": self._meta(
                self.lease_name,
                annotations={LOCK_ANNOTATION: json.dumps(info.as_dict(), sort_keys=True)},
            ),
            "spec": {
                "holderIdentity": info.id,
                "leaseDurationSeconds": duration,
                "acquireTime": acquired,
                "renewTime": acquired,
                "leaseTransitions": transitions,
            },
        }

    def acquire(self, info: LockInfo, *, ttl: float, timeout: float) -> LeaseLock:
        from releasectl.clients.kubernetes import KubeConflict, create_object, replace_object

        deadline = time.monotonic() + timeout
        duration = max(1, math.ceil(ttl))
        while True:
            sent = time.monotonic()  # before the lease is read: a conservative renewal time
            lease = self._lease()
            now = _now()
            if lease is None:
                mine = replace(info, token=0)
                try:
                    create_object(
                        self.client,
                        self._lease_body(mine, duration, 0, _micro(now)),
                        self.namespace,
                    )
                except KubeConflict:
                    continue  # someone created it first: look again
                return LeaseLock(self, mine, ttl, taken_at=sent)
            holder = _holder(lease)
            if holder is None or _expired(lease, now):
                previous = _lock_info(lease) if holder is not None else None
                transitions = int((lease.get("spec") or {}).get("leaseTransitions") or 0) + 1
                mine = replace(info, token=transitions)
                body = self._lease_body(mine, duration, transitions, _micro(now))
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                try:
                    replace_object(self.client, body, self.namespace)
                except KubeConflict:
                    continue  # another runner took it first
                lock = LeaseLock(self, mine, ttl, taken_at=sent)
                lock.taken_over = previous
                return lock
            if time.monotonic() >= deadline:
                raise LockHeldError(
                    f"environment {self.env!r} is locked: {_lock_info(lease).describe()}"
                )
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))

    def _renew(self, lock_id: str, duration: int) -> bool | None:
        """Move renewTime forward if the Lease is still ours; False if it is not, None if
        others kept writing it (contention, not loss: the next round decides)."""
        from releasectl.clients.kubernetes import KubeConflict, replace_object

        for _attempt in range(3):
            lease = self._lease()
            if lease is None or _holder(lease) != lock_id:
                return False
            lease["spec"]["renewTime"] = _micro(_now())
            lease["spec"]["leaseDurationSeconds"] = duration
            try:
                replace_object(self.client, lease, self.namespace)
            except KubeConflict:
                continue
            return True
        return None

    def _release(self, lock_id: str) -> None:
        from releasectl.clients.kubernetes import KubeConflict, replace_object

        for _attempt in range(CAS_ATTEMPTS):
            lease = self._lease()
            if lease is None or _holder(lease) != lock_id:
                return
            spec = lease["spec"]
            spec["holderIdentity"] = None
            spec["leaseDurationSeconds"] = 1
            annotations = lease["metadata"].get("annotations") or {}
            annotations.pop(LOCK_ANNOTATION, None)
            lease["metadata"]["annotations"] = annotations
            try:
                replace_object(self.client, lease, self.namespace)
            except KubeConflict:
                continue
            return

    def current_lock(self) -> LockInfo | None:
        """The holder of an unexpired Lease (an expired one is free to take)."""
        lease = self._lease()
        if lease is None or _holder(lease) is None or _expired(lease, _now()):
            return None
        return _lock_info(lease)

    def break_lock(self, lock_id: str) -> LockInfo:
        from releasectl.clients.kubernetes import KubeConflict, delete_object

        lease = self._lease()
        if lease is None or _holder(lease) is None:
            raise InputError(f"environment {self.env!r} is not locked")
        held = _lock_info(lease)
        if held.id != lock_id:
            raise InputError(
                f"lock id {lock_id!r} does not match the lock of {self.env!r}: " + held.describe()
            )
        try:
            delete_object(
                self.client,
                "coordination.k8s.io/v1",
                "Lease",
                self.lease_name,
                self.namespace,
                resource_version=lease["metadata"]["resourceVersion"],
            )
        except KubeConflict:
            raise InputError(
                f"the lock of {self.env!r} changed while breaking it; look again with "
                "`releasectl status`"
            ) from None
        return held

    # --- history ------------------------------------------------------------------------

    def _chunk_name(self, index: int) -> str:
        return f"{self.name}-history-{index:06d}"

    def _chunk(self, index: int) -> Obj | None:
        return self._get("ConfigMap", self._chunk_name(index))

    def _last(self) -> tuple[int, Obj | None]:
        """The highest chunk that exists and its index (0, None: none yet): gallop, then
        bisect, from the last index seen, since chunks are created in order without gaps."""
        low, last = self._last_chunk, None
        if low:
            last = self._chunk(low)
            if last is None:
                low = 0
        step = 1
        high = low + step
        while (found := self._chunk(high)) is not None:
            low, last, step = high, found, step * 2
            high = low + step
        while high - low > 1:  # low exists (or is 0), high does not
            mid = (low + high) // 2
            if (found := self._chunk(mid)) is not None:
                low, last = mid, found
            else:
                high = mid
        self._last_chunk = low
        return low, last

    def append_history(self, line: str) -> None:
        from releasectl.clients.kubernetes import KubeConflict, create_object, replace_object

        if "\n" in line:
            raise TargetError("a history line must not contain a newline")
        for _attempt in range(CAS_ATTEMPTS):
            index, chunk = self._last()
            text = (chunk.get("data") or {}).get(HISTORY_KEY, "") if chunk else ""
            full = len(text.encode()) + len(line.encode()) + 1 > self.history_chunk_bytes
            try:
                if chunk is None or (full and text):
                    body: Obj = {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": self._meta(self._chunk_name(index + 1)),
                        "data": {HISTORY_KEY: line + "\n"},
                    }
                    create_object(self.client, body, self.namespace)
                    self._last_chunk = index + 1
                else:
                    chunk["data"] = {**(chunk.get("data") or {}), HISTORY_KEY: text + line + "\n"}
                    replace_object(self.client, chunk, self.namespace)
            except KubeConflict:
                time.sleep(0.01 * (_attempt % 5))
                continue  # another runner appended first: read again
            return
        raise TargetError(f"could not append to the history of {self.env!r}: too much contention")

    def history_lines(self) -> Iterator[str]:
        index = 1
        while True:
            chunk = self._chunk(index)
            if chunk is None:
                return
            for line in (chunk.get("data") or {}).get(HISTORY_KEY, "").split("\n"):
                if line:
                    yield line
            index += 1

    def last_history_line(self) -> str | None:
        index, chunk = self._last()
        while index > 0:
            chunk = chunk if chunk is not None else self._chunk(index)
            lines = [
                x for x in ((chunk or {}).get("data") or {}).get(HISTORY_KEY, "").split("\n") if x
            ]
            if lines:
                return str(lines[-1])
            index, chunk = index - 1, None
        return None
