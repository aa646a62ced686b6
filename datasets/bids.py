"""A BIDS-EEG dataset (``sub-*/[ses-*/]eeg/``) as labelled trials, read with MNE-BIDS.

The participant is BIDS's ``sub``; the session is ``ses``, or ``run`` where there is no ``ses``
(the runs of one ``ses`` are one session, in run order), or ``1`` where there is neither. Trials
are rows of each recording's ``*_events.tsv``: ``onset``, ``duration`` and ``trial_type``, whose
values ``--events`` maps to classes (by default each distinct value is a class; ``n/a`` is none).
Channels come from ``*_channels.tsv`` by type (EEG only), bad ones being missing ones, with
the positions of ``*_electrodes.tsv`` where there is one; the rest is ``datasets/events.py``.
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from pathlib import Path

from bci_stream.dataset import DatasetOption
from bci_stream.datasets.events import OPTIONS, EventDataset, Part
from bci_stream.devices.files import Annotation, mne_info, raw_recording

#: The data files BIDS allows for EEG.
EXTENSIONS = (".vhdr", ".edf", ".bdf", ".set")
_LAYOUT = "sub-<label>/[ses-<label>/]eeg/sub-<label>[_ses-<label>]_task-<label>[_run-<index>]_eeg.vhdr|.edf|.bdf|.set"


def _read_raw(bids_path):
    """MNE-BIDS's reader, quiet: it warns about every optional sidecar a dataset lacks."""
    from mne_bids import read_raw_bids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return read_raw_bids(bids_path, verbose="error")
        except Exception as e:  # MNE and MNE-BIDS raise many types for unreadable files and sidecars
            raise ValueError(f"BIDS recording {bids_path.fpath}: MNE-BIDS cannot read it "
                             f"({e.__class__.__name__}: {e})") from None


def read_events(path: Path, srate: float) -> list[Annotation]:
    """The rows of an ``events.tsv`` as annotations at sample indices (onsets count from the file's first sample)."""
    if not path.is_file():
        raise FileNotFoundError(f"BIDS events {path}: no such file; every recording needs its events (onset, "
                                "duration, trial_type)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        columns, rows = list(reader.fieldnames or ()), list(reader)
    missing = [c for c in ("onset", "duration", "trial_type") if c not in columns]
    if missing:
        raise ValueError(f"BIDS events {path}: no column(s) {', '.join(missing)}; it has {', '.join(columns) or 'none'} "
                         "(trials are its rows, their classes the trial_type column)")
    out = []
    for n, row in enumerate(rows, 2):
        try:
            onset = float(row["onset"])
            duration = 0.0 if row["duration"] in ("n/a", "") else float(row["duration"])
        except (TypeError, ValueError):
            raise ValueError(f"BIDS events {path} row {n}: onset {row['onset']!r}, duration {row['duration']!r}; "
                             "expected seconds") from None
        out.append(Annotation(round(onset * srate), round(duration * srate), (row["trial_type"] or "n/a").strip()))
    return out


class BidsDataset(EventDataset):
    """A BIDS-EEG folder: participants (sub), sessions (ses or run), trials from events.tsv by trial_type."""

    name = "bids"
    options = (DatasetOption("task", str, "BIDS task to read (default: the only one)"), *OPTIONS)

    def _recordings(self):
        """``(bids_path, session)`` of each EEG recording of the chosen task, the runs of a session in order."""
        from mne_bids import BIDSPath

        if not self.root.is_dir():
            raise FileNotFoundError(f"BIDS root {self.root}: no such directory")
        found = [bp for bp in BIDSPath(root=self.root, datatype="eeg", suffix="eeg").match()
                 if bp.extension in EXTENSIONS]
        if not found:
            raise ValueError(f"BIDS root {self.root}: no EEG recordings (expected {_LAYOUT})")
        tasks = sorted({bp.task for bp in found if bp.task})
        task = self.option_values["task"]
        if task is None and len(tasks) > 1:
            raise ValueError(f"BIDS root {self.root} has tasks {', '.join(tasks)}: pick one with --task")
        if task is not None and task not in tasks:
            raise ValueError(f"BIDS root {self.root}: no EEG recordings of task {task!r}; its tasks: "
                             f"{', '.join(tasks) or 'none'}")
        chosen = [bp for bp in found if task is None or bp.task == task]
        keys = Counter((bp.subject, bp.session, bp.run) for bp in chosen)
        doubled = [bp.fpath.name for bp in chosen if keys[bp.subject, bp.session, bp.run] > 1]
        if doubled:
            raise ValueError(f"BIDS root {self.root}: several recordings for one subject, session and run: "
                             f"{', '.join(sorted(doubled))}")
        chosen.sort(key=lambda bp: (bp.session or "", int(bp.run) if str(bp.run or "").isdigit() else 0))
        return [(bp, bp.session or bp.run or "1") for bp in chosen]

    def _find(self) -> list[Part]:
        parts = []
        for bp, session in self._recordings():
            raw = _read_raw(bp)
            info, _ = mne_info(raw, bp.fpath)
            events = bp.copy().update(suffix="events", extension=".tsv").fpath
            parts.append(Part(bp.subject, session, bp.fpath, str(bp.fpath), sorted(bp.fpath.parent.iterdir()), info,
                              raw.n_times, read_events(events, info.srate),
                              lambda bp=bp: raw_recording(_read_raw(bp), bp.fpath).data()))
        return parts

    def _default_events(self, seen: Counter) -> dict[str, str]:
        return {value: value for value in sorted(seen) if value != "n/a"}
