"""Settings of ``bci-stream run`` from a TOML file: flags override the file, the file overrides defaults.

    source = "lsl:name=S1"
    participant = "P07"
    [filters]
    notch = 60.0
    [outputs]
    name = "lab-a"
    [rename]            # the stream's labels as the model's montage names them
    "EEG 1" = "Fp1"
    [artifacts]         # which windows are artifacts (labelled ``artifact``, never learned from)
    peak_uv = 200.0

Keys match the long flags (``state_dir`` is ``--state-dir``). Relative paths in
``model``, ``state_dir`` and ``log`` are relative to the file.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict
from pathlib import Path

from bci_stream.artifacts import ArtifactRule
from bci_stream.quality import Thresholds
from bci_stream.stratified import ANONYMOUS, NAME_RULE, name_problem


class ConfigError(ValueError):
    pass


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _name(v) -> bool:
    return isinstance(v, str) and name_problem(v) is None


def _off_or(check, what: str):
    return lambda v: v == "off" or check(v), f'{what} or "off"'


#: table -> key -> (accepts, what it expects, meaning when unset). "" is the top level.
SCHEMA: dict[str, dict[str, tuple]] = {
    "": {
        "source": (lambda v: isinstance(v, str), "a string", "required"),
        "model": (lambda v: isinstance(v, str), "a path", "the bundled model matching the source"),
        "participant": (_name, f"a name of {NAME_RULE}", ANONYMOUS),
        "session": (_name, f"a name of {NAME_RULE}", "1, or a fresh id without a participant"),
        "window": (lambda v: _number(v) and v > 0, "seconds > 0", "the model's"),
        "hop": (lambda v: _number(v) and v > 0, "seconds > 0", "the model's"),
        "duration": (lambda v: _number(v) and v > 0, "seconds > 0", "until interrupted"),
        "device": (lambda v: isinstance(v, str), "a string", "cpu"),
        "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", "the source's"),
        "control": (lambda v: isinstance(v, str), "an LSL stream name", "no live stratum control"),
        "state_dir": (lambda v: isinstance(v, str), "a path", "bci-stream/normalizer under $XDG_STATE_HOME or ~/.local/state"),
        "no_state": (lambda v: isinstance(v, bool), "true or false", "false"),
        "checkpoint": (lambda v: _number(v) and v > 0, "seconds > 0", "10 s"),
        "max_interpolated": (lambda v: _number(v) and 0 <= v <= 1, "a fraction in [0, 1]",
                             "0.25 of the model's channels"),
    },
    "filters": {
        "bandpass": (*_off_or(lambda v: isinstance(v, list) and len(v) == 2 and all(map(_number, v)) and 0 < v[0] < v[1],
                              "[low, high] in Hz"), "the model's"),
        "notch": (*_off_or(lambda v: _number(v) and v > 0, "a frequency in Hz"), "the model's"),
    },
    "outputs": {
        "name": (lambda v: isinstance(v, str) and v != "", "a non-empty string", "bci-stream"),
        "log": (lambda v: isinstance(v, str), "a path", "no log"),
        "quiet": (lambda v: isinstance(v, bool), "true or false", "false"),
    },
    "quality": {k: (lambda v: _number(v) and v >= 0, "a number >= 0", "") for k in asdict(Thresholds())},
    "artifacts": {
        "detect": (lambda v: isinstance(v, bool), "true or false", "true"),
        "peak_uv": (lambda v: _number(v) and v > 0, "microvolts > 0", ""),
        "channel_share": (lambda v: _number(v) and 0 < v <= 1, "a fraction in (0, 1] (detect = false: no rule)", ""),
    },
    # Free keys: the stream's label -> the name the model's montage uses (``--rename OLD=NEW`` adds to it).
    "rename": {},
}
PATHS = {"model", "state_dir", "log"}
#: What a setting is when neither file nor flag gives it (everything else: unset).
DEFAULTS = {"name": "bci-stream", "device": "cpu", "no_state": False, "checkpoint": 10.0, "quiet": False,
            **asdict(Thresholds()), "detect": True, **asdict(ArtifactRule())}
#: Settings the ``run`` command reads from its flags of the same name (``quality`` has no flags, ``artifacts``
#: only ``--artifacts/--no-artifacts`` for ``detect``; ``rename`` is one flag, merged into the table).
FLAG_TABLES = ("", "filters", "outputs", "artifacts")


def load(path) -> dict[str, dict]:
    """The file's settings as ``{table: {key: value}}``, checked against SCHEMA; paths made absolute."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"config {path}: {e}") from None
    out: dict[str, dict] = {t: {} for t in SCHEMA}
    for key, value in raw.items():
        if isinstance(value, dict):
            if key not in SCHEMA or key == "":
                raise ConfigError(f"config {path}: unknown table [{key}]; known: "
                                  f"{', '.join(f'[{t}]' for t in SCHEMA if t)}")
            for k, v in value.items():
                out[key][k] = _check(path, key, k, v)
        else:
            out[""][key] = _check(path, "", key, value)
    for table in out.values():
        for k in PATHS & set(table):
            table[k] = str((path.parent / Path(table[k]).expanduser()).resolve())
    return out


def _check(path: Path, table: str, key: str, value):
    where = f"config {path}: " + (f"[{table}] " if table else "")
    if table == "rename":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}{key!r} must be renamed to a channel name (a string), got {value!r}")
        return value
    known = SCHEMA[table]
    if key not in known:
        raise ConfigError(f"{where}unknown key {key!r}; known: {', '.join(known)}")
    accepts, expected, _ = known[key]
    if not accepts(value):
        raise ConfigError(f"{where}{key} must be {expected}, got {value!r}")
    return value


def effective(file_settings: dict[str, dict] | None, flags: dict) -> dict[str, dict]:
    """Every setting: a flag that was given (not None) wins over the file, the file over DEFAULTS."""
    out: dict[str, dict] = {}
    for table, keys in SCHEMA.items():
        out[table] = {}
        for key in keys:
            value = flags.get(key) if table in FLAG_TABLES else None
            if value is None and file_settings is not None:
                value = file_settings[table].get(key)
            out[table][key] = DEFAULTS.get(key) if value is None else value
    out["rename"] = {**(file_settings or {}).get("rename", {}), **(flags.get("rename") or {})}
    return out


def apply(args) -> dict[str, dict]:
    """Merge ``args.config`` (if any) under the flags in ``args`` and write the result back onto ``args``."""
    settings = effective(load(args.config) if args.config else None, vars(args))
    for table in FLAG_TABLES:
        for key, value in settings[table].items():
            setattr(args, key, value)
    args.rename = settings["rename"]
    return settings


def thresholds(settings: dict[str, dict]) -> Thresholds:
    return Thresholds.from_dict(settings["quality"])


def artifact_rule(settings: dict[str, dict]) -> ArtifactRule | None:
    """The rule of ``[artifacts]``, or None where detection is off."""
    rule = dict(settings["artifacts"])
    return ArtifactRule.from_dict(rule) if rule.pop("detect") else None


# ---------------------------------------------------------------- TOML out
def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else "inf" if value > 0 else "-inf")
    if isinstance(value, str):  # a JSON string is a TOML basic string, except that TOML wants DEL escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def dumps(settings: dict[str, dict]) -> str:
    """TOML that :func:`load` reads back to the same settings; unset ones appear as comments saying what applies."""
    lines: list[str] = []
    for table, keys in SCHEMA.items():
        if table:
            lines += ["", f"[{table}]"]
        for key, (_, _, unset) in keys.items():
            value = settings[table].get(key)
            lines.append(f"# {key}: not set ({unset})" if value is None else f"{key} = {_toml(value)}")
        if table == "rename":
            lines += [f"{_toml(old)} = {_toml(new)}" for old, new in settings[table].items()] or ["# none"]
    return "\n".join(lines) + "\n"
