"""What a dataset plugin gives the core: labelled trials, the files to key caches on, and what to record.

A dataset registers its ``Dataset`` subclass in the ``bci_stream.datasets`` entry-point
group; the command line turns its ``options`` into flags, the feature cache keys on
its ``files``, a trained model records its ``provenance`` and file replay asks every
registered dataset whether it ``claims`` a file.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from bci_stream.stream import Trial

#: What ``trials(baseline=...)`` does with a recorded pre-trial baseline.
BASELINES = ("drop", "keep")


@dataclass(frozen=True)
class DatasetOption:
    """A dataset-specific setting: a keyword of the dataset, a flag ``--name`` (underscores as dashes) on the CLI."""

    name: str
    type: Callable[[str], Any]
    help: str
    choices: tuple | None = None
    default: Any = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class Dataset(abc.ABC):
    """One dataset, opened: ``Dataset(root, seed=0, **options)`` checks what it can before any trial is read.

    Subclasses set ``name`` (as registered), ``options``, ``needs_root`` (False for
    data that are generated, not read) and ``has_baseline`` (trials can be read with
    their recorded pre-trial baseline, which ``--baseline subtract`` uses). ``seed``
    seeds generated data; datasets read from files have nothing to seed.
    """

    name: ClassVar[str]
    options: ClassVar[tuple[DatasetOption, ...]] = ()
    needs_root: ClassVar[bool] = True
    has_baseline: ClassVar[bool] = False

    def __init__(self, root=None, seed: int = 0, **options):
        self.option_values = self.check_options(options)
        if self.needs_root and root is None:
            raise ValueError(f"dataset {self.name!r} is read from a folder; none given")
        if not self.needs_root and root is not None:
            raise ValueError(f"dataset {self.name!r} is generated, not read: it takes no folder, got {root}")
        self.root = None if root is None else Path(root).expanduser()
        self.seed = seed

    @classmethod
    def check_options(cls, given: dict) -> dict:
        """Every option's value, given (converted and checked) or default."""
        known = {o.name: o for o in cls.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(f"dataset {cls.name!r} takes no option(s) {unknown}; it takes {', '.join(known) or 'none'}")
        values = {}
        for name, o in known.items():
            if name not in given:
                values[name] = o.default
                continue
            try:
                values[name] = o.type(given[name])
            except (TypeError, ValueError):
                raise ValueError(f"{cls.name} {name} {given[name]!r}: expected {getattr(o.type, '__name__', o.type)}") from None
            if o.choices is not None and values[name] not in o.choices:
                raise ValueError(f"{cls.name} {name} {given[name]!r}: expected one of {', '.join(map(str, o.choices))}")
        return values

    @classmethod
    def check_baseline(cls, baseline: str) -> None:
        if baseline not in BASELINES:
            raise ValueError(f"{cls.name} baseline {baseline!r}: expected one of {', '.join(BASELINES)}")
        if baseline == "keep" and not cls.has_baseline:
            raise ValueError(f"dataset {cls.name!r} has no recorded pre-trial baseline to keep")

    @property
    @abc.abstractmethod
    def class_names(self) -> tuple[str, ...]:
        """What each trial's ``label`` indexes."""

    @abc.abstractmethod
    def sessions(self) -> list[tuple[str, str]]:
        """``(participant, session)`` of every session, in the order trials come."""

    @abc.abstractmethod
    def _trials(self, participants: list[str], baseline: str) -> Iterator[Trial]:
        """The trials of these (known) participants, read lazily, session by session."""

    @abc.abstractmethod
    def _n_trials(self, participants: list[str]) -> int:
        """How many trials ``_trials`` gives, for progress."""

    def participants(self) -> list[str]:
        return list(dict.fromkeys(p for p, _ in self.sessions()))

    def select(self, participants=None) -> list[str]:
        """These participants in the dataset's order, all by default; an unknown one is an error."""
        have = self.participants()
        if participants is None:
            return have
        wanted = {str(p) for p in participants}
        missing = sorted(wanted - set(have))
        if missing:
            raise ValueError(f"dataset {self.name!r}: no participant(s) {missing}; it has {have}")
        return [p for p in have if p in wanted]

    def trials(self, participants=None, baseline: str = "drop") -> Iterator[Trial]:
        """Every trial of ``participants`` (ids; default all), float32 microvolts, read file by file.

        ``baseline="keep"`` (datasets with ``has_baseline``) starts each trial with its
        pre-trial baseline, ``info.extra["baseline_samples"]`` long.
        """
        self.check_baseline(baseline)
        return self._trials(self.select(participants), baseline)

    def n_trials(self, participants=None) -> int:
        return self._n_trials(self.select(participants))

    def files(self, participants=None) -> list[Path] | None:
        """Every file ``trials`` reads for these participants, to key caches on; None: nothing to key on."""
        return None

    def provenance(self) -> dict:
        """What a model trained on this dataset records about its data; a dataset read from no folder is generated."""
        sessions: dict[str, list[str]] = {}
        for p, s in self.sessions():
            sessions.setdefault(p, []).append(s)
        return {"dataset": self.name, "synthetic": not self.needs_root, "options": dict(self.option_values),
                "participants": list(sessions), "sessions": sessions}

    @classmethod
    def has_file_format(cls) -> bool:
        """Whether it has a file format of its own (it overrides ``claims``), which replay reads with its options."""
        return cls.claims.__func__ is not Dataset.claims.__func__

    @classmethod
    def claims(cls, path: Path) -> bool:
        """Whether ``path`` is in this dataset's own file format, which ``read_file`` replays alone."""
        return False

    @classmethod
    def read_file(cls, path: Path, baseline: str = "drop", **options) -> tuple[tuple[str, ...], list[Trial]]:
        """``(class_names, trials)`` of one file this dataset ``claims``."""
        raise ValueError(f"{path}: dataset {cls.name!r} has no files of its own to read")
