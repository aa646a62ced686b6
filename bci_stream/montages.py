"""Channel names and positions: the datasets' channel orders, how real headsets spell 10-20 names,
standard electrode positions, and rough 2-D scalp positions for the synthetic generator."""

from __future__ import annotations

import functools
import re

import numpy as np

#: SEED's 62 channels in the order of its .mat files.
SEED62 = (
    "FP1 FPZ FP2 AF3 AF4 F7 F5 F3 F1 FZ F2 F4 F6 F8 FT7 FC5 FC3 FC1 FCZ FC2 FC4 FC6 FT8 T7 C5 C3 C1 CZ "
    "C2 C4 C6 T8 TP7 CP5 CP3 CP1 CPZ CP2 CP4 CP6 TP8 P7 P5 P3 P1 PZ P2 P4 P6 P8 PO7 PO5 PO3 POZ PO4 PO6 "
    "PO8 CB1 O1 OZ O2 CB2"
).split()

#: DEAP's 32 EEG channels in the Geneva order of data_preprocessed_python.
DEAP32 = (
    "FP1 AF3 F3 F7 FC5 FC1 C3 T7 CP5 CP1 P3 P7 PO3 O1 OZ PZ FP2 AF4 FZ F4 F8 FC6 FC2 CZ C4 T8 CP6 CP2 "
    "P4 P8 PO4 O2"
).split()

# Anterior-posterior coordinate of each 10-20 row prefix (+1 front, -1 back).
_ROWS = {"FP": 0.95, "AF": 0.8, "F": 0.6, "FT": 0.35, "FC": 0.35, "T": 0.0, "C": 0.0, "TP": -0.35,
         "CP": -0.35, "P": -0.6, "PO": -0.8, "O": -0.95, "CB": -1.05, "I": -1.1}


def positions(labels) -> np.ndarray:
    """Approximate (lateral, anterior) position in [-1, 1] of each label; left is negative.

    Good enough for smooth spatial patterns of simulated activity, not for source imaging.
    """
    out = []
    for label in labels:
        m = re.fullmatch(r"([A-Za-z]+?)(Z|z|\d+)", label)
        if not m or m.group(1).upper() not in _ROWS:
            out.append((0.0, 0.0))
            continue
        row, num = m.group(1).upper(), m.group(2)
        y = _ROWS[row]
        if num.upper() == "Z":
            x = 0.0
        else:
            k = int(num)
            x = (1 if k % 2 == 0 else -1) * min(1.0, 0.2 * ((k + 1) // 2) + (0.1 if row in ("T", "FT", "TP") else 0))
        out.append((x, y))
    return np.asarray(out)


#: Old 10-20 names of the temporal and posterior-temporal sites, as 10-10 names them.
ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
# What recorders wrap a label in: "EEG Fp1-REF" (EDF exports), "Fp1-A1", "C3-LE", "Fcz." (PhysioNet's EDFs).
_PREFIX = re.compile(r"^(EEG)[\s_-]+", re.IGNORECASE)
_SUFFIX = re.compile(r"-(REF|A1|A2|M1|M2|LE|AVG)$", re.IGNORECASE)


def canonical(label: str) -> str:
    """The 10-10 name a headset's label means: case, padding dots, ``EEG `` and reference suffixes
    stripped, old temporal names replaced (``"EEG T3-REF"`` -> ``"T7"``, ``"Fcz."`` -> ``"FCZ"``)."""
    name = _SUFFIX.sub("", _PREFIX.sub("", label.strip().rstrip(".").strip())).upper()
    return ALIASES.get(name, name)


@functools.cache
def _standard() -> dict[str, np.ndarray]:
    """MNE's 10-05 template positions (head frame, metres) by canonical name."""
    import mne

    name = "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
    pos = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    out = {canonical(k): np.asarray(v, float) for k, v in pos.items()}
    # SEED's NeuroScan Quik-Cap puts CB1/CB2 (cerebellar) one 10 % step below O1/O2, as Iz is below Oz;
    # 10-05 has no such site, so they are O1/O2 moved by the Oz->Iz step, back on O1/O2's sphere.
    for cb, o in (("CB1", "O1"), ("CB2", "O2")):
        moved = out[o] + out["IZ"] - out["OZ"]
        out[cb] = moved * np.linalg.norm(out[o]) / np.linalg.norm(moved)
    return out


def standard_position(label: str) -> np.ndarray | None:
    """Template position of a 10-05 label (any spelling ``canonical`` understands), or None."""
    return _standard().get(canonical(label))
