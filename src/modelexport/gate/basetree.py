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
    return BaseTree(base, label or _short_commit(tree) or str(tree), unmatched,
                    cwd if cwd.is_dir() else tree)


@contextlib.contextmanager
def worktree(ref: str, head: Manifest) -> Iterator[tuple[Path, str]]:
    """A checkout of ``ref`` from the head's repository, removed afterwards: its folder and
    short commit."""
    root = _toplevel(head.path.parent)
    if root is None:
        raise UsageError(f"--against-ref {ref}: {head.path} is not in a git repository")
    commit = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                  f"{ref}^{{commit}}")
    if commit is None:
        raise UsageError(f"--against-ref {ref}: no such commit in {root}")
    holder = Path(tempfile.mkdtemp(prefix="modelexport-base-"))
    os.chmod(holder, 0o755)  # the workers' user reads the base's code there
    tree = holder / "base"
    try:
        if _git(root, "worktree", "add", "--detach", "--quiet", str(tree), commit) is None:
            raise UsageError(f"--against-ref {ref}: git could not check out {commit[:12]}")
        yield tree, commit[:7]
    finally:
        _git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(holder, ignore_errors=True)


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
