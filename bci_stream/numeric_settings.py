"""Settings that are a handful of numbers (quality thresholds, the artifact rule), read from a config table."""

from __future__ import annotations

from dataclasses import fields


class NumericSettings:
    """For dataclasses of floats: ``from_dict`` names any key the table should not have, and reads every value as a
    float, so a config table and the defaults it overrides meet in one place."""

    #: What the table is called in an error.
    WHAT = "settings"

    @classmethod
    def from_dict(cls, d: dict, where: str | None = None):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where or cls.WHAT}: unknown key(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**{k: float(v) for k, v in d.items()})
