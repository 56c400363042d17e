"""The pull request's base, to measure beside the head: a checkout given as a folder
(``check --against``), or one made from a git ref (``--against-ref``) and removed after.
The base's manifest is the head's manifest's path in the base's tree; its models' code is
the base's own (factory sources import from the base's folders)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelexport.errors import UsageError
from modelexport.gate import manifest
from modelexport.gate.manifest import Manifest

GIT_TIMEOUT_S = 300  # a checkout of a large repository


@dataclass(frozen=True)
class BaseTree:
    """A pull request's base: its manifest, and how reports name it (a short commit, or
    the folder it was given as)."""

    manifest: Manifest
    label: str
    unmatched: tuple[str, ...] = ()  # its selected models the head's manifest lacks
    cwd: Path | None = None  # where its models' code runs: as the head's, in its own tree


def load(tree: Path, head: Manifest, select: list[str], named: str | None = None,
         label: str | None = None) -> BaseTree:
    """The base in ``tree``: its manifest where the head's is, relative to the head's
    repository (or the current folder outside one). ``named``: how errors name the base
    (default ``--against TREE``)."""
    named = named or f"--against {tree}"
    if not tree.is_dir():
        raise UsageError(f"{named}: not a folder")
    root = _toplevel(head.path.parent) or Path.cwd()
    try:
        relative = head.path.resolve().relative_to(root.resolve())
    except ValueError:
        raise UsageError(f"{head.path}: outside {root}, so its place in the base "
                         f"({named}) is unknown") from None
    found = tree / relative
    if not found.is_file():
        raise UsageError(f"{named}: has no {relative} (the head's manifest, in the same "
                         "place)")
    base = manifest.load(found)
    names = {spec.name for spec in head.models}
    unmatched = tuple(spec.name for spec in base.select(select) if spec.name not in names)
    here = Path.cwd().resolve()
    cwd = tree / here.relative_to(root.resolve()) if here.is_relative_to(root.resolve()) \
        else tree
    # The results schema holds a label of up to 200 characters: a folder by its name.
    shown = label or _short_commit(tree) or tree.resolve().name[:200] or str(tree)[:200]
    return BaseTree(base, shown, unmatched, cwd if cwd.is_dir() else tree)


@dataclass(frozen=True)
class Source:
    """Where the base comes from: a folder, or a commit of the head's repository."""

    named: str  # how errors and notes name it: "--against-ref main"
    tree: Path | None = None
    commit: str | None = None


def given(tree: Path | None, ref: str | None, head: Manifest) -> Source | None:
    """The base the command line names (``--against`` or ``--against-ref``), if any; its
    ref resolved to a commit. UsageError where there is no such commit."""
    if tree is not None:
        return Source(f"--against {tree}", tree=tree)
    if ref is None:
        return None
    return Source(f"--against-ref {ref}", commit=commit_of(ref, head, f"--against-ref {ref}"))


def commit_of(ref: str, head: Manifest, named: str) -> str:
    root = _toplevel(head.path.parent)
    if root is None:
        raise UsageError(f"{named}: {head.path} is not in a git repository")
    commit = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                  f"{ref}^{{commit}}")
    if commit is None:
        raise UsageError(f"{named}: no such commit in {root}")
    return commit


@contextlib.contextmanager
def opened(source: Source, head: Manifest, select: list[str]) -> Iterator[BaseTree]:
    """The base, loaded; a checkout made for a commit is removed afterwards."""
    if source.tree is not None:
        yield load(source.tree, head, select, source.named)
        return
    assert source.commit is not None
    with worktree(source.commit, head, source.named) as tree:
        yield load(tree, head, select, source.named, source.commit[:7])


@contextlib.contextmanager
def worktree(commit: str, head: Manifest, named: str) -> Iterator[Path]:
    """A checkout of ``commit`` from the head's repository, removed afterwards."""
    root = _toplevel(head.path.parent)
    if root is None:
        raise UsageError(f"{named}: {head.path} is not in a git repository")
    holder = Path(tempfile.mkdtemp(prefix="modelexport-base-"))
    os.chmod(holder, 0o755)  # the workers' user reads the base's code there
    tree = holder / "base"
    try:
        if _git(root, "worktree", "add", "--detach", "--quiet", str(tree), commit) is None:
            raise UsageError(f"{named}: git could not check out {commit[:12]}")
        yield tree
    finally:
        _git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(holder, ignore_errors=True)


def of_pull_request(head: Manifest, base_sha: str | None) -> tuple[Source | None, str]:
    """The commit to measure as the pull request's base, or None and why not. On a
    ``pull_request`` event actions/checkout checks out the merge of the head into the base
    branch: its first parent is the base branch as the head was merged into it (with
    ``fetch-depth: 2``). Else the event's base commit, where the checkout has it."""
    root = _toplevel(head.path.parent)
    if base_sha is None or root is None:
        return None, ("no pull request names a base commit" if base_sha is None
                      else "not a git checkout")
    parents = (_git(root, "rev-list", "--parents", "-n", "1", "HEAD") or "").split()
    named = "the pull request's base"
    if len(parents) == 3:  # HEAD, then its two parents: the merge commit
        return Source(named, commit=parents[1]), ""
    if _git(root, "cat-file", "-e", f"{base_sha}^{{commit}}") is not None:
        return Source(named, commit=base_sha), ""
    return None, (f"the base commit {base_sha[:7]} is not in this checkout (check out with "
                  "fetch-depth: 2)")


def _toplevel(folder: Path) -> Path | None:
    found = _git(folder, "rev-parse", "--show-toplevel")
    return Path(found) if found else None


def _short_commit(tree: Path) -> str | None:
    found = _git(tree, "rev-parse", "--short=7", "HEAD")
    # A folder inside another checkout is no commit of its own.
    return found if found and _toplevel(tree) == tree.resolve() else None


def _git(folder: Path, *args: str) -> str | None:
    """Git's output, stripped; None where git fails or is not installed."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
