"""A whole bot project on disk: domain, config, training data and endpoints, loaded together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crowddesk.bot.project.config import ProjectConfig, load_config
from crowddesk.bot.project.credentials import CREDENTIALS_FILE, ChannelCredentials, load_credentials
from crowddesk.bot.project.domain import Domain, domain_files, load_domain, with_responses
from crowddesk.bot.project.endpoints import Endpoints, load_endpoints
from crowddesk.bot.project.training_data import TrainingData, find_training_files, load_training_data
from crowddesk.bot.project.yaml_files import FileWarning, ProjectFileError

DOMAIN_FILE_NAMES = ("domain.yml", "domain.yaml")
DOMAIN_DIRECTORY = "domain"
CONFIG_FILE = "config.yml"
DATA_DIRECTORY = "data"
ENDPOINTS_FILE = "endpoints.yml"


@dataclass
class Project:
    root: Path
    domain: Domain
    config: ProjectConfig
    data: TrainingData
    endpoints: Endpoints
    credentials: ChannelCredentials = field(default_factory=ChannelCredentials)

    def warnings(self) -> list[FileWarning]:
        """What the project's files contain that CrowdDesk reads but ignores (Rasa's pipeline, ...)."""
        return [*self.config.warnings, *self.domain.warnings, *self.data.warnings, *self.credentials.warnings]

    def training_files(self) -> list[Path]:
        """Domain and data files, whose content decides the trained model.

        config.yml is left out on purpose: `config.fingerprint_dict()` covers it without
        retraining for comment or assistant_id edits.
        """
        domain_paths = domain_files(self.domain.path) if self.domain.path is not None else []
        return sorted({*domain_paths, *self.data.files})


def locate_domain(root: Path) -> Path:
    """`domain.yml` (or `.yaml`), or a `domain/` directory of domain files, under `root`."""
    candidates = [root / name for name in DOMAIN_FILE_NAMES if (root / name).is_file()]
    if (root / DOMAIN_DIRECTORY).is_dir():
        candidates.append(root / DOMAIN_DIRECTORY)
    if not candidates:
        raise ProjectFileError(Path(DOMAIN_FILE_NAMES[0]), None, None, f"no domain.yml or domain/ directory in {root}")
    if len(candidates) > 1:
        names = " and ".join(str(path.relative_to(root)) for path in candidates)
        raise ProjectFileError(candidates[1].relative_to(root), None, None, f"found both {names}; keep one")
    return candidates[0]


def load_project(root: Path, *, environ: Mapping[str, str] | None = None) -> Project:
    """Load and parse every project file; stops at the first malformed one (ProjectFileError).

    Cross-file checks (unknown intents in rules, missing responses, ...) are `validate_project`'s job.
    """
    domain = load_domain(locate_domain(root), root=root)
    data = load_training_data(find_training_files(root / DATA_DIRECTORY), root=root)
    return Project(
        root=root,
        domain=with_responses(domain, data.responses, data.sources),
        config=load_config(root / CONFIG_FILE, root=root),
        data=data,
        endpoints=load_endpoints(root / ENDPOINTS_FILE, root=root, environ=environ),
        credentials=load_credentials(root / CREDENTIALS_FILE, root=root),
    )
