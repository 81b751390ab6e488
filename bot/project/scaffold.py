"""`crowddesk init`: copy the starter project into a new directory."""

from __future__ import annotations

import shutil
from importlib.resources import as_file, files
from pathlib import Path

from crowddesk.errors import CrowdDeskError

TEMPLATE_PACKAGE = "crowddesk.bot"
# Leftovers of running or browsing the template that must never land in a user's project.
_SKIPPED_NAMES = frozenset({"__pycache__", ".DS_Store"})


class ScaffoldError(CrowdDeskError):
    """The target directory cannot receive a new project."""


def scaffold_project(target: Path) -> list[Path]:
    """Copy the starter project into `target` (created if missing; must be empty) and
    return the files written, sorted."""
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ScaffoldError(f"{target} is not empty; choose a new or empty directory for the project")
    template = files(TEMPLATE_PACKAGE) / "templates" / "project"
    with as_file(template) as template_path:
        target.mkdir(parents=True, exist_ok=True)
        written = [
            _copy(source, target / source.relative_to(template_path)) for source in _template_files(template_path)
        ]
    return sorted(written)


def _template_files(directory: Path) -> list[Path]:
    return [
        path
        for path in directory.rglob("*")
        if path.is_file() and not _SKIPPED_NAMES.intersection(path.relative_to(directory).parts)
    ]


def _copy(source: Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return destination
