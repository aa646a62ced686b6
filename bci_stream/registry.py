"""Entry-point registry: built-in and third-party sources and plugins are found the same way."""

from __future__ import annotations

from importlib.metadata import entry_points

DEVICE_GROUP = "bci_stream.devices"
PLUGIN_GROUP = "bci_stream.plugins"
DATASET_GROUP = "bci_stream.datasets"


class UnknownNameError(LookupError):
    pass


def _names(group: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=group)}


def source_names() -> list[str]:
    return sorted(_names(DEVICE_GROUP))


def plugin_names(kind: str) -> list[str]:
    prefix = kind + "."
    return sorted(n[len(prefix) :] for n in _names(PLUGIN_GROUP) if n.startswith(prefix))


def load_source(scheme: str):
    eps = _names(DEVICE_GROUP)
    if scheme not in eps:
        raise UnknownNameError(
            f"unknown source {scheme!r}; installed sources: {', '.join(sorted(eps)) or 'none'}"
        )
    return eps[scheme].load()


def load_plugin(kind: str, name: str):
    """``kind`` is ``features``, ``models`` or ``sinks``."""
    eps = _names(PLUGIN_GROUP)
    key = f"{kind}.{name}"
    if key not in eps:
        raise UnknownNameError(f"unknown {kind} plugin {name!r}; installed: {', '.join(plugin_names(kind)) or 'none'}")
    return eps[key].load()


def dataset_names() -> list[str]:
    return sorted(_names(DATASET_GROUP))


def load_dataset(name: str):
    """The ``bci_stream.dataset.Dataset`` subclass registered as ``name``."""
    eps = _names(DATASET_GROUP)
    if name not in eps:
        raise UnknownNameError(f"unknown dataset {name!r}; installed datasets: {', '.join(sorted(eps)) or 'none'}")
    return eps[name].load()


def datasets() -> dict:
    """Every installed dataset class by name, e.g. to ask which one claims a file."""
    return {name: load_dataset(name) for name in dataset_names()}
