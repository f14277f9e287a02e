"""Online experiments: arms, the users each arm serves, what each arm changes.

Read from the file named by ``CHRONOTOPE_EXPERIMENTS_FILE`` (YAML or JSON; docs/experiments.md) and
checked whole at start: a bad file stops the server with every problem named, rather than serving
an experiment nobody can read. A user is assigned by a stable hash of their id, so every worker
and every restart puts them in the same arm while the file is unchanged.

Experiments do not overlap: each takes its ``traffic`` share of users from one line of [0, 1)
(in file order), so a user is in at most one experiment; within it the arms split by ``weight``
(hashed again with the experiment's own salt, so resizing one experiment does not reshuffle the
arms of another).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import InvalidInputError

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
WEIGHT_TOLERANCE = 1e-6


class ArmSettings(BaseModel):
    """What an arm changes for its users' requests; unset: the server's default. A request that
    states ``use_llm`` itself keeps it (the trace says so)."""

    model_config = ConfigDict(extra="forbid")

    use_llm: bool | None = Field(None, description="Rerank (and explain) with the LLM.")
    explain_with_llm: bool | None = Field(None, description="LLM-written explanations (else templates).")
    ranker: Literal["learned", "heuristic"] | None = Field(None, description="The feature ranker.")
    feedback_learning: bool | None = Field(
        None, description="Let reactions lower and raise similar places (hiding rejected ones stays on)."
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    weight: float = Field(description="Share of the experiment's users; an experiment's weights add up to 1.")
    settings: ArmSettings = Field(default_factory=ArmSettings)


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    description: str = ""
    traffic: float = Field(1.0, description="Share of all users in this experiment (0 < traffic <= 1).")
    salt: str | None = Field(None, description="Hash salt for the arms (default: the name).")
    arms: list[Arm] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Experiment:
        problems = []
        if not 0 < self.traffic <= 1:
            problems.append(f"traffic {self.traffic:g} is not in (0, 1]")
        if len(self.arms) < 2:
            problems.append(f"needs at least two arms to compare, has {len(self.arms)}")
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            problems.append(f"arm names repeat: {names}")
        empty = [a.name for a in self.arms if not a.weight > 0]
        if empty:
            problems.append(f"arms with no weight (empty): {empty}")
        total = sum(a.weight for a in self.arms)
        if self.arms and abs(total - 1.0) > WEIGHT_TOLERANCE:
            problems.append(f"arm weights add up to {total:g}, not 1")
        seen: dict[str, str] = {}
        for a in self.arms:
            key = json.dumps(a.settings.changes(), sort_keys=True)
            if key in seen:
                problems.append(f"arms {seen[key]!r} and {a.name!r} change the same things the same way")
            seen.setdefault(key, a.name)
        if problems:
            raise ValueError(f"experiment {self.name!r}: " + "; ".join(problems))
        return self


@dataclass(frozen=True)
class Assignment:
    experiment: str
    arm: str
    settings: ArmSettings

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.experiment, "arm": self.arm, "changes": self.settings.changes()}


class ExperimentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    salt: str = Field("chronotope-experiments", description="Hash salt that places users on the line.")
    experiments: list[Experiment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_overlap(self) -> ExperimentsConfig:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment names repeat: {names}")
        total = sum(e.traffic for e in self.experiments)
        if total > 1 + WEIGHT_TOLERANCE:
            raise ValueError(
                f"experiments overlap: their traffic adds up to {total:g} of the users (at most 1); "
                "a user can be in one experiment only"
            )
        return self

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise InvalidInputError(f"no experiment {name!r}; configured: {[e.name for e in self.experiments]}")

    def assign(self, user_id: str) -> Assignment | None:
        """The user's experiment and arm (None: in no experiment). Stable across workers and restarts."""
        if not self.experiments:
            return None
        u = unit_hash(self.salt, user_id)
        start = 0.0
        for e in self.experiments:
            if start <= u < start + e.traffic:
                v = unit_hash(e.salt or e.name, user_id)
                upto = 0.0
                for a in e.arms:
                    upto += a.weight
                    if v < upto:
                        return Assignment(e.name, a.name, a.settings)
                last = e.arms[-1]  # rounding at the very end of the line
                return Assignment(e.name, last.name, last.settings)
            start += e.traffic
        return None


def unit_hash(salt: str, user_id: str) -> float:
    """A number in [0, 1) fixed by (salt, user id): sha256, not Python's per-process hash()."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def load_experiments(path: Path | None) -> ExperimentsConfig:
    """The experiments in ``path`` (YAML or JSON), checked; none when ``path`` is None. A missing
    or invalid file raises InvalidInputError naming the file and every problem."""
    if path is None:
        return ExperimentsConfig()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidInputError(f"experiments file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if Path(path).suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"experiments file {path} is not valid JSON or YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"experiments file {path}: expected a mapping with 'experiments', got {type(data).__name__}"
        )
    try:
        return ExperimentsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise InvalidInputError(f"experiments file {path} refused: {problems}") from exc
