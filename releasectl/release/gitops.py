"""Commit back to git after an apply: stage exactly the files apply wrote, commit them with a
message naming the environment, release and plan digest, and tag the release.

GitPython is imported inside the functions: `releasectl --help` never pays for it.

A commit-back must never sweep someone's unrelated edits into a release commit, so it refuses
to run while the work tree or the index has changes outside the paths it was given (untracked
files count; ignored files do not), and names them. `dirty_paths` is the same check for a
pre-flight before apply runs anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.errors import InputError

if TYPE_CHECKING:
    import git


def _repo(root: Path) -> git.Repo:
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise InputError(f"{root} is not inside a git repository; cannot commit back") from None


def _relative(repo: git.Repo, root: Path, path: Path) -> str:
    """`path` (absolute, or relative to `root`) relative to the repository's top, POSIX style."""
    top = Path(str(repo.working_tree_dir)).resolve()
    # realpath resolves symlinks as far as the path exists (a deleted file still maps).
    full = Path(os.path.realpath(path if path.is_absolute() else root / path))
    try:
        rel = full.relative_to(top)
    except ValueError:
        raise InputError(f"{path} is outside the repository {top}") from None
    return rel.as_posix()


def _covered(name: str, allowed: Iterable[str]) -> bool:
    for prefix in allowed:
        if prefix in ("", "."):
            return True
        if name == prefix or name.startswith(prefix.rstrip("/") + "/"):
            return True
    return False


def _changed(repo: git.Repo) -> list[str]:
    """Every path with a change in the index or work tree, untracked included, ignored not."""
    # -z: NUL-separated, paths verbatim (no quoting of unusual names); renames carry two paths.
    raw = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    names: list[str] = []
    for record in raw.split("\0"):
        if len(record) > 3:
            names.append(record[3:])
    return names


def dirty_paths(root: Path, allowed: list[Path]) -> list[str]:
    """Paths (relative to the repository's top) changed outside `allowed`, sorted."""
    repo = _repo(root)
    try:
        allow = [_relative(repo, root, p) for p in allowed]
        return sorted(n for n in _changed(repo) if not _covered(n, allow))
    finally:
        repo.close()


@dataclass(frozen=True, slots=True)
class IgnoredPath:
    """A path git would refuse to `git add`, and the rule that ignores it."""

    path: str  # relative to the repository's top
    source: str  # the ignore file (".gitignore", ".git/info/exclude", a global excludes file)
    line: int
    pattern: str


def ignored_paths(root: Path, paths: list[Path]) -> list[IgnoredPath]:
    """The `paths` an ignore rule keeps out of `git add`, each with its rule. A tracked file is
    never ignored (git keeps tracking it), so only untracked or missing paths can be listed."""
    import subprocess

    repo = _repo(root)
    try:
        rel = [_relative(repo, root, p) for p in paths]
        top = str(repo.working_tree_dir)
    finally:
        repo.close()
    # -z (paths verbatim, any character) needs --stdin
    proc = subprocess.run(
        ["git", "check-ignore", "-v", "-z", "--stdin"],
        cwd=top,
        input="".join(f"{r}\0" for r in rel),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 1:  # none of them is ignored
        return []
    if proc.returncode != 0:
        raise InputError(f"git check-ignore failed: {proc.stderr.strip()}")
    out = proc.stdout
    fields = out.split("\0")
    found = []
    for i in range(0, len(fields) - 3, 4):  # -z -v: source, line, pattern, path
        source, line, pattern, path = fields[i : i + 4]
        if not pattern.startswith("!"):  # a negated rule that matched keeps the path
            found.append(IgnoredPath(path, source, int(line), pattern))
    return found


def changed_paths(root: Path, paths: list[Path]) -> list[str]:
    """The `paths` with a change against HEAD (staged, unstaged or untracked), sorted."""
    repo = _repo(root)
    try:
        allow = [_relative(repo, root, p) for p in paths]
        return sorted(n for n in _changed(repo) if _covered(n, allow))
    finally:
        repo.close()


def committed_text(root: Path, path: Path) -> str | None:
    """The text of `path` at HEAD (None: not in HEAD, or no commit yet)."""
    import git

    repo = _repo(root)
    try:
        rel = _relative(repo, root, path)
        try:
            return str(repo.git.show(f"HEAD:{rel}"))
        except git.GitCommandError:
            return None
    finally:
        repo.close()


def commit_message(env: str, release: str | None, plan_digest: str, message_extra: str = "") -> str:
    what = f"apply {release}" if release else "apply component plan"
    subject = f"release({env}): {what} [plan {plan_digest[:12]}]"
    body = [
        f"Environment: {env}",
        f"Release: {release or '-'}",
        f"Plan: {plan_digest}",
    ]
    text = subject + "\n\n" + "\n".join(body) + "\n"
    if message_extra.strip():
        text += "\n" + message_extra.strip() + "\n"
    return text


def release_tags(
    release: str | None, components: Mapping[str, int | str] | None = None
) -> list[str]:
    """``v<release>`` and ``<component>@<version>`` for the given component versions."""
    tags = [f"v{release}"] if release else []
    tags.extend(f"{name}@{version}" for name, version in sorted((components or {}).items()))
    return tags


def _check_tag_names(repo: git.Repo, tags: list[str]) -> None:
    import git

    for tag in tags:
        try:
            repo.git.check_ref_format(f"refs/tags/{tag}")
        except git.GitCommandError:
            raise InputError(f"{tag!r} is not a valid git tag name") from None


def _tag_target(repo: git.Repo, tag: str) -> str | None:
    import git

    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"refs/tags/{tag}^{{commit}}"))
    except git.GitCommandError:
        return None


def commit_back(
    root: Path,
    *,
    env: str,
    release: str | None,
    plan_digest: str,
    paths: list[Path],
    tags: list[str],
    message_extra: str = "",
) -> str:
    """Stage exactly `paths`, commit, create annotated `tags`; return the commit's sha.

    With nothing to commit (apply changed nothing), HEAD is tagged and returned: running
    apply twice makes no second commit. A tag that already names the commit is kept; a tag
    that names another commit is an error, raised before anything is committed.
    """
    import git

    repo = _repo(root)
    try:
        allow = [_relative(repo, root, p) for p in paths]
        if not allow:
            raise InputError("commit back: no paths to commit")
        outside = sorted(n for n in _changed(repo) if not _covered(n, allow))
        if outside:
            shown = "\n".join(f"  {n}" for n in outside[:50])
            more = f"\n  ... and {len(outside) - 50} more" if len(outside) > 50 else ""
            raise InputError(
                "cannot commit back: the work tree has changes outside what apply wrote "
                f"(commit or stash them first):\n{shown}{more}"
            )
        _check_tag_names(repo, tags)
        top = Path(str(repo.working_tree_dir))
        # A path apply did not write (no changelog this time) is neither on disk nor tracked.
        present = [p for p in allow if (top / p).exists() or repo.git.ls_files("--", p)]
        try:
            # -A stages deletions and new files inside the paths, nothing outside them.
            if present:
                repo.git.add("-A", "--", *present)
        except git.GitCommandError as exc:
            raise InputError(f"git add failed: {_stderr(exc)}") from None
        has_head = repo.head.is_valid()
        staged = _staged(repo, has_head)
        head = repo.head.commit.hexsha if has_head else None
        if not staged and head is None:
            raise InputError("commit back: nothing to commit in a repository without commits")
        for tag in tags:  # checked before committing: a failed tag must not leave a commit
            at = _tag_target(repo, tag)
            if at is not None and (staged or at != head):
                raise InputError(
                    f"tag {tag} already exists at {at[:12]}, not at the commit being made; "
                    "a release tag is never moved (delete it by hand if it is wrong)"
                )
        sha = head
        if staged:
            message = commit_message(env, release, plan_digest, message_extra)
            try:
                repo.git.commit("-q", "-m", message)
            except git.GitCommandError as exc:
                raise InputError(f"git commit failed: {_stderr(exc)}") from None
            sha = repo.head.commit.hexsha
        assert sha is not None
        for tag in tags:
            if _tag_target(repo, tag) == sha:
                continue
            note = f"{tag}: {env}, plan {plan_digest[:12]}"
            try:
                repo.git.tag("-a", tag, sha, "-m", note)
            except git.GitCommandError as exc:
                raise InputError(f"git tag {tag} failed: {_stderr(exc)}") from None
        return sha
    finally:
        repo.close()


def _staged(repo: git.Repo, has_head: bool) -> list[str]:
    if has_head:
        out = repo.git.diff("--cached", "--name-only", "-z")
    else:
        out = repo.git.ls_files("--cached", "-z")
    return [n for n in out.split("\0") if n]


def _stderr(exc: Any) -> str:
    text = str(getattr(exc, "stderr", "") or exc).strip()
    return text.removeprefix("stderr:").strip().strip("'").strip()
