"""The commit and branch a run tested: CI variables first, else the ``.git`` directory's files.

Reading ``HEAD`` and a ref file costs two small reads; ``git rev-parse`` would cost a process
start on every session end, so it is never run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["branch_and_commit"]

_COMMIT_VARS = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1", "GIT_COMMIT")
# GITHUB_HEAD_REF is the pull request's branch; GITHUB_REF_NAME would be "123/merge" there.
_BRANCH_VARS = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BUILDKITE_BRANCH",
                "CIRCLE_BRANCH", "GIT_BRANCH")


def branch_and_commit(start: Path, environ: Mapping[str, str] | None = None
                      ) -> tuple[str | None, str | None]:
    env = os.environ if environ is None else environ
    commit = _first(env, _COMMIT_VARS)
    branch = _first(env, _BRANCH_VARS)
    if commit is None or branch is None:
        git_branch, git_commit = _from_git(start)
        commit = commit or git_commit
        branch = branch or git_branch
    return branch, commit


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[name].strip() for name in names if env.get(name, "").strip()), None)


def _from_git(start: Path) -> tuple[str | None, str | None]:
    try:
        gitdir = _gitdir(start)
        if gitdir is None:
            return None, None
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return None, head or None  # detached HEAD: the commit itself
        ref = head[5:].strip()
        branch = ref.removeprefix("refs/heads/")
        return branch, _resolve(gitdir, ref)
    except (OSError, UnicodeDecodeError):
        return None, None


def _gitdir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dot.read_text().strip()
            if text.startswith("gitdir: "):
                return (folder / text[8:].strip()).resolve()
            return None
    return None


def _resolve(gitdir: Path, ref: str) -> str | None:
    # A worktree keeps HEAD to itself and shares refs through its "commondir".
    places = [gitdir]
    common = gitdir / "commondir"
    if common.is_file():
        places.append((gitdir / common.read_text().strip()).resolve())
    for place in places:
        loose = place / ref
        if loose.is_file():
            return loose.read_text().strip() or None
    for place in places:
        packed = place / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name.strip() == ref and not line.startswith(("#", "^")):
                    return sha
    return None
