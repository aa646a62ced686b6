"""Trials cut from continuous recordings at their events: what ``--dataset bids`` and ``--dataset recordings`` share.

A recorded file's events (BIDS ``events.tsv`` rows, XDF markers, a file's own annotations) are
``Annotation``s at sample indices. ``--events VALUE=CLASS,...`` says which of them start a trial,
and of which class; every other event is left out (and counted, and reported once). A trial
ends by the first of these rules that applies:

1. the event's own duration, when it has one (BIDS ``duration``, an annotation that lasts);
2. the next ``--trial-end TEXT`` event after its start, no later than the next trial's start;
3. ``--trial-seconds S`` after its start.

A trial that none of them ends, that ends past its recording or after the next one has started
is an error naming the file and the event: a guessed boundary would label the wrong samples.

Opening a dataset reads every file's events and channel layout (not yet its samples) so that
mistakes surface before hours of feature computing: an ``--events`` value no file has, a class
some participant never had, files at different rates. Channels a file marks bad are missing
channels, and a file that lacks channels of the dataset's montage (every channel some file
records well) is re-expressed on it by ``channels.onto_montage``, so every trial of the
dataset has one channel layout.
"""

from __future__ import annotations

import abc
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bci_stream.channels import montage_of, onto_montage
from bci_stream.dataset import Dataset, DatasetOption
from bci_stream.devices.files import Annotation
from bci_stream.stream import StreamInfo, Trial

log = logging.getLogger("bci_stream.datasets.events")

OPTIONS = (
    DatasetOption("events", str, "VALUE=CLASS,...: the events (BIDS trial_type values, markers, annotations) that "
                                 "start a trial, and its class; others are left out. bids: every trial_type is a "
                                 "class by default; recordings: required"),
    DatasetOption("trial_end", str, "TEXT: a trial with no duration ends at the next event TEXT, if one comes "
                                    "before the next trial"),
    DatasetOption("trial_seconds", float, "seconds per trial: synthetic: every trial (default 20); bids, "
                                          "recordings: a trial with neither a duration nor a --trial-end event"),
)

#: What has been said this process: a dataset opened twice (train opens it again for the bundle's provenance)
#: reports its left-out events once.
_said: set[str] = set()


def parse_events(text: str) -> dict[str, str]:
    """``"VALUE=CLASS,..."`` -> ``{VALUE: CLASS}`` in the order given; several values may share a class."""
    events: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        value, _, name = (s.strip() for s in item.partition("="))
        if item.count("=") != 1 or not value or not name:
            raise ValueError(f"--events: expected VALUE=CLASS[,VALUE=CLASS...], got {item!r}")
        if events.setdefault(value, name) != name:
            raise ValueError(f"--events: {value!r} maps to both {events[value]!r} and {name!r}")
    if not events:
        raise ValueError(f"--events: expected VALUE=CLASS[,VALUE=CLASS...], got {text!r}")
    return events


def counted(counts: Counter) -> str:
    """``'fixation' (60), 'rating' (63)``: what a listing of events says."""
    return ", ".join(f"{text!r} ({n})" for text, n in sorted(counts.items())) or "none"


@dataclass(frozen=True)
class Span:
    """One trial's place in its file: samples ``start:stop``, its class, the event that started it."""

    start: int
    stop: int
    label: int
    event: str


@dataclass
class Part:
    """One recorded file of a session, as its header and events give it: where its trials lie, not its samples."""

    participant: str
    session: str
    path: Path
    where: str  # how errors name it: the file, or the manifest row and the file
    files: list[Path]  # what the feature cache keys on
    info: StreamInfo  # its channels (bad ones named in extra["bads"]), rate and positions
    n_samples: int
    annotations: list[Annotation]
    load: Callable[[], np.ndarray]  # its samples, [n_samples, info's channels], microvolts
    spans: list[Span] = field(default_factory=list)


def cut(part: Part, events: dict[str, str], classes: tuple[str, ...], trial_end: str | None,
        trial_seconds: float | None) -> tuple[list[Span], Counter]:
    """Where ``part``'s trials lie by the rules above, and the events that are neither a trial nor its end."""
    srate, marks = part.info.srate, sorted(part.annotations, key=lambda a: a.onset)
    starts = [k for k, a in enumerate(marks) if a.text in events]
    spans: list[Span] = []
    for j, k in enumerate(starts):
        a = marks[k]
        at = f"{part.where}: event {a.text!r} at {a.onset / srate:.3f} s"
        following = marks[starts[j + 1]].onset if j + 1 < len(starts) else part.n_samples
        before_next = itertools.takewhile(lambda b, until=following: b.onset <= until, marks[k + 1 :])
        end = next((b.onset for b in before_next if b.text == trial_end and b.onset > a.onset), None)
        if a.duration > 0:
            stop = a.onset + a.duration
        elif end is not None:
            stop = end
        elif trial_seconds:
            stop = a.onset + round(trial_seconds * srate)
        else:
            rule = f"no {trial_end!r} event before the next trial, " if trial_end else ""
            raise ValueError(f"{at}: the trial has no end: no duration, {rule}no --trial-seconds "
                             "(give --trial-end TEXT or --trial-seconds S)")
        if a.onset < 0 or stop > part.n_samples:
            raise ValueError(f"{at}: the trial ({a.onset / srate:.3f}-{stop / srate:.3f} s) does not lie within the "
                             f"recording (0-{part.n_samples / srate:.3f} s)")
        if spans and a.onset < spans[-1].stop:
            raise ValueError(f"{at}: the trial starts before the previous one ({spans[-1].event!r}) has ended, at "
                             f"{spans[-1].stop / srate:.3f} s; trials must not overlap")
        spans.append(Span(a.onset, stop, classes.index(events[a.text]), a.text))
    return spans, Counter(a.text for a in marks if a.text not in events and a.text != trial_end)


def good_channels(info: StreamInfo) -> list[int]:
    """A file's EEG channels that are not marked bad: a bad channel is a missing one."""
    bads = set(info.extra.get("bads", ()))
    return [i for i in range(info.n_channels) if info.is_eeg(i) and info.channel_names[i] not in bads]


class EventDataset(Dataset):
    """Recorded files cut into trials at their events; a subclass says where the files and their events are."""

    options = OPTIONS
    #: What a subclass's events are called in what it reports: "events", "markers".
    event_noun = "events"

    def __init__(self, root=None, seed: int = 0, **options):
        super().__init__(root, seed, **options)
        from bci_stream.training import natural_key

        o = self.option_values
        if o["trial_seconds"] is not None and not o["trial_seconds"] > 0:
            raise ValueError(f"{self.name} trial_seconds {o['trial_seconds']}: expected more than 0")
        parts = sorted(self._find(), key=lambda p: (natural_key(p.participant), natural_key(p.session)))
        seen = Counter(a.text for p in parts for a in p.annotations)
        events = parse_events(o["events"]) if o["events"] is not None else self._default_events(seen)
        absent = [v for v in events if v not in seen]
        if absent:
            raise ValueError(f"{self.name} {self.root}: --events value(s) {absent} occur nowhere in the dataset; "
                             f"its {self.event_noun}: {counted(seen)}")
        self._classes = tuple(dict.fromkeys(events.values()))
        self.unmatched: Counter = Counter()
        for p in parts:
            if p.info.srate != parts[0].info.srate:
                raise ValueError(f"{p.where}: recorded at {p.info.srate:g} Hz, but {parts[0].where} at "
                                 f"{parts[0].info.srate:g} Hz; resample so that every file of a dataset has one rate")
            p.spans, left = cut(p, events, self._classes, o["trial_end"], o["trial_seconds"])
            if not p.spans:
                raise ValueError(f"{p.where}: no trials: none of its {self.event_noun} is an --events value "
                                 f"({', '.join(map(repr, events))}); it has {counted(Counter(a.text for a in p.annotations))}")
            self.unmatched += left
        self._check_classes(parts)
        eeg = [montage_of(p.info) for p in parts]
        good = {p.info.channel_names[i] for p in parts for i in good_channels(p.info)}
        self.montage = tuple(c for c in dict.fromkeys(c for names in eeg for c in names) if c in good)
        # Where a channel was digitized in several files, the first file's position stands for the dataset.
        self._positions = {c: xyz for p in reversed(parts) for c, xyz in p.info.positions.items() if c in self.montage}
        self._parts = parts
        if self.unmatched:
            self._say(f"{self.name} {self.root}: {sum(self.unmatched.values())} {self.event_noun} matched no --events "
                      f"value: {counted(self.unmatched)}")

    @abc.abstractmethod
    def _find(self) -> list[Part]:
        """Every recorded file of the dataset with its events; errors name the file and what was expected."""

    @abc.abstractmethod
    def _default_events(self, seen: Counter) -> dict[str, str]:
        """The events map without ``--events``, from every event's text and count."""

    def _say(self, message: str) -> None:
        if message not in _said:
            _said.add(message)
            log.info(message)

    def _check_classes(self, parts: list[Part]) -> None:
        """Leave-one-participant-out scores each held-out person on every class: each must have had them all."""
        had: dict[str, set[int]] = {}
        for p in parts:
            had.setdefault(p.participant, set()).update(s.label for s in p.spans)
        for participant, labels in had.items():
            lacking = [c for i, c in enumerate(self._classes) if i not in labels]
            if lacking:
                raise ValueError(f"{self.name} {self.root}: participant {participant!r} has no trial of class(es) "
                                 f"{lacking}; every participant needs every class: map fewer classes with --events, "
                                 "or leave the participant out")

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._classes

    def sessions(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((p.participant, p.session) for p in self._parts))

    def _of(self, participants: list[str]) -> list[Part]:
        return [p for p in self._parts if p.participant in participants]

    def _trials(self, participants: list[str], baseline: str) -> Iterator[Trial]:
        numbered: Counter = Counter()  # a session's files (BIDS runs, manifest rows) number their trials on
        for p in self._of(participants):
            trials = self._read(p, numbered[p.participant, p.session])
            numbered[p.participant, p.session] += len(trials)
            yield from trials

    def _read(self, part: Part, before: int) -> list[Trial]:
        """One file's trials in time order, its gaps between trials dropped, on the dataset's montage."""
        data = part.load()
        if len(data) != part.n_samples:
            raise ValueError(f"{part.where}: {len(data)} samples, {part.n_samples} when the dataset was opened: "
                             "the file changed; open the dataset again")
        columns = good_channels(part.info)
        names = [part.info.channel_names[i] for i in columns]
        own = replace(part.info, name=part.path.name, channel_names=names, channel_types=(),
                      positions={c: xyz for c, xyz in part.info.positions.items() if c in names})
        trials = [Trial(part.participant, part.session, before + k + 1, s.label, data[s.start : s.stop, columns], own)
                  for k, s in enumerate(part.spans)]
        if tuple(names) != self.montage:
            trials = list(onto_montage(trials, self.montage))
        info = StreamInfo(self.name, self.montage, part.info.srate, "microvolts",
                          source_id=f"{self.name}:{part.participant}:{part.session}", device="recorded file",
                          positions=self._positions, extra={"file": str(part.path)})
        return [replace(t, info=info) for t in trials]

    def _n_trials(self, participants: list[str]) -> int:
        return sum(len(p.spans) for p in self._of(participants))

    def files(self, participants=None) -> list[Path]:
        return list(dict.fromkeys(f for p in self._of(self.select(participants)) for f in p.files))
