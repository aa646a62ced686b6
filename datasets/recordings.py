"""A lab's own recordings, listed in ``recordings.csv``, as labelled trials cut at their markers.

``recordings.csv`` (in ROOT, or ROOT itself) has the columns ``path`` (relative to the
manifest's folder, or absolute), ``participant`` and ``session``. Each file is anything
``devices.files.read_recording`` reads: XDF (the EEG stream, markers from its Markers
streams, their clocks mapped onto the EEG's by pyxdf's clock offsets) or any format MNE reads
(its annotations). Several rows of one participant and session are one session, in the
order of the rows. ``--events`` (required) maps marker texts to classes; the rest is
``datasets/events.py``.
"""

from __future__ import annotations

import csv
import functools
import glob
from collections import Counter
from pathlib import Path

from bci_stream.datasets.events import EventDataset, Part, counted
from bci_stream.devices.files import XDF_SUFFIXES, read_recording

MANIFEST = "recordings.csv"
COLUMNS = ("path", "participant", "session")


@functools.cache
def _header(path: Path, stamp: tuple):
    """``(info, n_samples, annotations)`` of a file; ``stamp`` (its size and time) is there so that a changed file is
    read again. Kept because opening a dataset reads every file, and ``train`` opens it twice."""
    rec = read_recording(path)
    return rec.info, rec.n_samples, rec.annotations


def _samples(path: Path):
    return read_recording(path).data()


class RecordingsDataset(EventDataset):
    """Files listed in recordings.csv (XDF with markers, or any file MNE reads), trials cut at their markers."""

    name = "recordings"
    event_noun = "markers"

    def _manifest(self) -> Path:
        manifest = self.root if self.root.suffix.lower() == ".csv" else self.root / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(f"recordings {manifest}: no such file (expected a {MANIFEST} with columns "
                                    f"{', '.join(COLUMNS)}: one row per recorded file)")
        return manifest

    def _find(self) -> list[Part]:
        manifest = self._manifest()
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns, rows = [c.strip() for c in reader.fieldnames or ()], list(reader)
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"recordings {manifest}: no column(s) {', '.join(missing)}; it has "
                             f"{', '.join(columns) or 'none'} (expected {', '.join(COLUMNS)})")
        if not rows:
            raise ValueError(f"recordings {manifest}: no rows (expected one per recorded file)")
        parts = []
        for n, row in enumerate(rows, 2):  # row 1 is the header, as a spreadsheet numbers them
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            where = f"{manifest} row {n}"
            empty = [c for c in COLUMNS if not row[c]]
            if empty:
                raise ValueError(f"{where}: no {', '.join(empty)}")
            path = Path(row["path"]).expanduser()
            path = path if path.is_absolute() else manifest.parent / path
            where = f"{where}: {path}"
            if not path.is_file():
                raise FileNotFoundError(f"{where}: no such file")
            files = [manifest, *sorted(path.parent.glob(f"{glob.escape(path.stem)}.*"))]  # a .vhdr's .eeg and .vmrk too
            try:
                info, n_samples, annotations = _header(path, tuple((f.stat().st_size, f.stat().st_mtime_ns)
                                                                   for f in files[1:]))
            except (ValueError, FileNotFoundError) as e:
                raise ValueError(f"{manifest} row {n}: {e}") from None
            if not annotations:
                kind = ("no markers: it has no stream of type Markers, or an empty one"
                        if path.suffix.lower() in XDF_SUFFIXES else "no annotations")
                raise ValueError(f"{where}: {kind}; trials are cut at markers")
            parts.append(Part(row["participant"], row["session"], path, where, files, info, n_samples, annotations,
                              functools.partial(_samples, path)))
        return parts

    def _default_events(self, seen: Counter) -> dict[str, str]:
        raise ValueError(f"dataset 'recordings' needs --events TEXT=CLASS,...: which markers start a trial, and of "
                         f"which class; its files' markers: {counted(seen)}")
