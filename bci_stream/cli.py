"""The ``bci-stream`` command line: devices, simulate, run, train, replay, features."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("bci_stream")


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "bci-stream" / "normalizer"


class _Stop:
    """SIGINT/SIGTERM end the loop cleanly so outlets close and statistics are saved."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handler)

    def _handler(self, *_):
        self.requested = True

    def __call__(self) -> bool:
        return self.requested


# ---------------------------------------------------------------- devices
def cmd_devices(args) -> int:
    import pylsl

    from bci_stream import registry
    from bci_stream.devices.synthetic import LAYOUTS

    print("Sources (use as --source SCHEME:SPEC):")
    for name in registry.source_names():
        doc = (registry.load_source(name).__doc__ or "").strip().splitlines()[0]
        print(f"  {name:<10} {doc}")
    print(f"\nSynthetic layouts: {', '.join(f'{k} ({len(v.channels)} ch, {v.srate:g} Hz)' for k, v in LAYOUTS.items())}")
    print("BrainFlow: brainflow:synthetic, brainflow:BOARD?serial_port=/dev/ttyUSB0 (any BoardIds name or id)")
    from bci_stream.bundle import ModelBundle, bundled_paths

    print("\nBundled models (use as run --model NAME):")
    for path in bundled_paths():
        b = ModelBundle.load(path)
        print(f"  {path.stem:<12} {len(b.channels)} ch @ {b.srate:g} Hz, {', '.join(b.class_names)}; "
              f"trained on {b.describe_provenance()}")
    print("\nDatasets (use as train/evaluate --dataset NAME):")
    for name, dataset in registry.datasets().items():
        print(f"  {name:<10} {_summary(dataset)}")
    streams = pylsl.resolve_streams(wait_time=args.wait)
    print(f"\nLSL streams visible now ({len(streams)}):")
    for s in streams:
        print(f"  name={s.name()!r} type={s.type()!r} source_id={s.source_id()!r} "
              f"{s.channel_count()} ch @ {s.nominal_srate():g} Hz on {s.hostname()}")
    return 0


# ---------------------------------------------------------------- simulate
def cmd_simulate(args) -> int:
    from bci_stream.devices.synthetic import SyntheticSource
    from bci_stream.outlets import EEGOutlet, MarkerOutlet
    from bci_stream.stream import StreamInfo

    src = SyntheticSource(args.layout, realtime=True, participant=args.participant, session=args.session,
                          seed=args.seed, srate=args.srate, trial_seconds=args.trial)
    g = src.info
    info = StreamInfo(args.name, g.channel_names, g.srate, g.unit, source_id=f"bci-stream-simulate:{args.name}",
                      device=g.device)
    eeg = EEGOutlet(info)
    truth = MarkerOutlet(f"{args.name}-truth", f"bci-stream-simulate:{args.name}:truth",
                         {"layout": args.layout, "participant": args.participant, "session": args.session})
    classes = src.gen.class_names
    print(f"simulating {args.layout} ({info.n_channels} ch @ {info.srate:g} Hz) as LSL stream {args.name!r}, "
          f"truth on {args.name + '-truth'!r}", file=sys.stderr, flush=True)
    stop, last, t_first = _Stop(), None, None
    try:
        for chunk in src.chunks():
            eeg.push(chunk)
            for k in _changes(src.last_classes, last):
                truth.push(classes[src.last_classes[k]], float(chunk.timestamps[k]))
                log.info("truth: %s", classes[src.last_classes[k]])
            last = int(src.last_classes[-1])
            t_first = t_first or chunk.timestamps[0]
            if stop() or (args.duration and chunk.timestamps[-1] - t_first >= args.duration):
                break
    finally:
        src.close()
        eeg.close()
        truth.close()
    return 0


def _changes(classes, previous) -> list[int]:
    """Indices in ``classes`` where the class differs from the sample before."""
    import numpy as np

    before = np.concatenate([[-1 if previous is None else previous], classes[:-1]])
    return np.flatnonzero(classes != before).tolist()


# ---------------------------------------------------------------- run
def _check_names(args) -> None:
    """--participant and --session name state files and strata: a ValueError naming the flag if one breaks the rule."""
    from bci_stream.stratified import check_name

    for option in ("participant", "session"):
        if getattr(args, option) is not None:
            check_name(getattr(args, option), f"--{option}")


def cmd_run(args) -> int:
    from bci_stream import config

    settings = config.apply(args)
    if args.print_config:
        print(config.dumps(settings), end="")
        return 0
    if not args.source:
        raise SystemExit("bci-stream run: no source; give --source or `source` in the --config file")
    _check_names(args)  # those of the config file were checked as it was read

    import torch

    from bci_stream.channels import MAX_INTERPOLATED
    from bci_stream.session import LiveSession, Outputs, SessionOptions, resolve_bundle, warn_if_synthetic
    from bci_stream.sources import open_source

    _check_device(args.device)
    torch.set_num_threads(1)  # one window at a time: threads only add latency
    source = open_source(args.source, participant=args.participant, session=args.session, seed=args.seed)
    with source:
        state_dir = None if args.no_state else Path(args.state_dir) if args.state_dir else _default_state_dir()
        options = SessionOptions(args.participant, args.session, args.window, args.hop, args.device,
                                 settings["filters"], state_dir, args.fresh, settings["rename"],
                                 MAX_INTERPOLATED if args.max_interpolated is None else args.max_interpolated,
                                 checkpoint=args.checkpoint, artifacts=config.artifact_rule(settings))
        bundle = resolve_bundle(args.model, source.info, options)
        warn_if_synthetic(bundle, source.info)
        model_name = bundle.name or Path(args.model or "").name
        outputs = Outputs(args.name, console=not args.quiet, log=args.log, control=args.control,
                          quality=config.thresholds(settings))
        live = LiveSession(source.info, bundle, options, outputs, meta={
            "model": model_name, "source": args.source, "source_uid": source.info.extra.get("uid", source.info.source_id)})
        print(f"running model {model_name!r} on {source.info.name!r} ({source.info.n_channels} ch @ "
              f"{source.info.srate:g} Hz) as stratum {live.participant}/{live.session}; labels on "
              f"{args.name + '-labels'!r}", file=sys.stderr, flush=True)
        print(live.channels.summary(model_name), file=sys.stderr, flush=True)
        try:
            live.run(source.chunks(), duration=args.duration, should_stop=_Stop())
        finally:
            live.close()
        s = live.pipeline.summary()
        print(f"done: {s['predictions']} predictions from {s['windows']} windows, {s['artifacts']} artifact(s), "
              f"{s['rejected_nonfinite']} rejected (NaN/Inf), {s['halted']} withheld while decoding was halted, "
              f"{s['lost_samples']} samples lost in "
              f"{s['gaps']} gap(s)",
              file=sys.stderr)
        for stage, v in s["stage_ms"].items():
            print(f"  {stage:<10} p50 {v['p50']:.3f} ms  p99 {v['p99']:.3f} ms", file=sys.stderr)
    return 0


def _number(kind: type, minimum: float, inclusive: bool = False, what: str | None = None):
    """An argparse type: a finite ``kind`` (int or float) above ``minimum`` (or equal, with ``inclusive``);
    its error says the range, e.g. ``argument --hop: expected seconds > 0, got '0'``."""
    expected = f"{what or ('an integer' if kind is int else 'a number')} {'>=' if inclusive else '>'} {minimum:g}"

    def parse(text: str):
        import math

        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_SECONDS = _number(float, 0, what="seconds")
_COUNT = _number(int, 1, inclusive=True)


def _rename(text: str) -> dict:
    from bci_stream.channels import parse_rename

    try:
        return parse_rename(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _off_or_float(text: str):
    if text == "off":
        return "off"
    try:
        hz = float(text)
    except ValueError:
        hz = float("nan")
    if not 0 < hz < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a frequency in Hz > 0 or off, got {text!r}")
    return hz


def _bandpass(text: str):
    if text == "off":
        return "off"
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in Hz (e.g. 1,50) or off, got {text!r}") from None
    if not 0 < low < high < float("inf"):
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in Hz with 0 < LOW < HIGH, got {text!r}")
    return [low, high]


def _check_device(device: str) -> str:
    """``device`` if torch can use it on this machine (cpu; cuda, cuda:N and mps when present), else ValueError."""
    import torch

    have = ["cpu"]
    if torch.cuda.is_available():
        have += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        have.append("mps")
    if device not in have:
        raise ValueError(f"--device {device}: not a torch device here; this machine has: {', '.join(have)}")
    return device


# ---------------------------------------------------------------- view
def cmd_view(args) -> int:
    from bci_stream.apps.viewer import view

    if args.screenshot and args.duration is None:
        raise SystemExit("bci-stream view: --screenshot needs --duration (when to take it)")
    if args.attach:
        given = [f"--{k}" for k in ("model", "participant", "session", "seed") if getattr(args, k) is not None]
        if given:
            raise SystemExit(f"bci-stream view: {', '.join(given)} only apply with --source; the pipeline publishing "
                             f"{args.attach}-labels chose its own (switch its stratum with run --control)")
    _check_names(args)
    return view(source=args.source, attach=args.attach, duration=args.duration, screenshot=args.screenshot,
                model=args.model, participant=args.participant, session=args.session, seed=args.seed,
                timeout=args.timeout)


# ---------------------------------------------------------------- train
def _open_dataset(args, seed: int = 0):
    """``--dataset`` on DATASET_DIR with the options of it given on the command line."""
    from bci_stream import registry

    return registry.load_dataset(args.dataset)(args.dataset_dir, seed, **_dataset_options(args, args.dataset))


def _dataset(args):
    """(FeatureSet, trials of one participant) for train/evaluate, from any registered dataset."""
    from bci_stream.featurecache import feature_set

    if args.baseline == "subtract" and getattr(args, "online", False):
        raise ValueError("--baseline subtract has no live counterpart (a live session has no pre-trial "
                         "baseline per trial); evaluate --online with --baseline drop")
    dataset = _open_dataset(args, args.seed)
    # Generated datasets have no files to key the cache on: feature_set computes them afresh.
    fset = feature_set(dataset, features=args.features, window=args.window, hop=args.train_hop,
                     baseline=args.baseline, quiet=args.quiet, montage=_montage(args, dataset))
    if not args.classes:
        return fset, lambda p: dataset.trials([p])
    from bci_stream.batch import relabel_trials, select_classes

    fset, mapping = select_classes(fset, args.classes.split(","))
    return fset, lambda p: relabel_trials(dataset.trials([p]), mapping)


def _montage(args, dataset) -> tuple[str, ...] | None:
    """The channels ``--channels-of SOURCE`` or ``--channels LIST`` asks the model to read, less those the
    dataset neither has nor can be interpolated to (reported); None: the dataset's own channels."""
    from bci_stream.channels import montage_of, names_list, trainable

    if args.channels_of:
        from bci_stream.sources import open_source

        with open_source(args.channels_of) as source:
            montage = montage_of(source.info)
    elif args.channels:
        montage = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    else:
        return None
    first = next(iter(dataset.trials(dataset.participants()[:1])))
    kept, left_out = trainable(montage, first.info)
    if left_out:
        print(f"montage: left out {len(left_out)} channel(s) that {dataset.name!r} lacks and that have no known "
              f"position to interpolate them at: {names_list(left_out)}", file=sys.stderr)
    if not kept:
        raise ValueError(f"--channels{'-of' if args.channels_of else ''}: none of the montage's channels "
                         f"({names_list(montage)}) is in dataset {dataset.name!r} or has a known position")
    print(f"montage: training on {len(kept)} channel(s): {names_list(kept)}", file=sys.stderr)
    return kept


def _provenance(args) -> dict:
    """What a bundle records about its training data: dataset, options, participants and sessions."""
    return _open_dataset(args, args.seed).provenance()


def _train_settings(args):
    from bci_stream.training import CLASS_AWARE, TrainSettings

    return TrainSettings(norm=args.norm, **({"model": args.model} if args.model else {}), epochs=args.epochs,
                         seed=args.seed, device=args.device, batch_strata=args.batch_strata, live_pass=args.live_pass,
                         class_aware=CLASS_AWARE[args.class_aware], population=args.population,
                         **({} if args.level_seconds is None else {"level_seconds": args.level_seconds or None}),
                         quiet=args.quiet)


def cmd_train(args) -> int:
    from bci_stream.training import train_bundle

    _check_device(args.device)  # before the features are computed
    fset, trials_of = _dataset(args)
    bundle = train_bundle(fset, Path(args.output).stem, _train_settings(args), hop=args.hop, session_trials=trials_of)
    bundle.report["data"] = _provenance(args)
    path = bundle.save(args.output)
    r = bundle.report
    print(f"wrote {path}: {r['windows']} windows from {r['participants']} participants in {r['train_seconds']} s; "
          f"held-out participants' accuracy {r.get('heldout_accuracy', float('nan')):.3f}", file=sys.stderr)
    if "class_aware_choice" in r:
        c = r["class_aware_choice"]
        print(f"--class-aware auto: {'on' if c['chosen'] else 'off'} (held-out participants online: class-aware "
              f"{c['aware']:.3f}, plain {c['plain']:.3f})", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from bci_stream.evaluation import UnknownFoldError, evaluate

    _check_device(args.device)  # before the features are computed
    fset, trials_of = _dataset(args)
    if args.held_out and args.protocol != "loso":
        raise ValueError("--held-out names participants to leave out one at a time: it needs --protocol loso")
    only = args.held_out.split(",") if args.held_out else None
    try:
        report = evaluate(fset, _train_settings(args), args.protocol, dataset=args.dataset, k=args.folds,
                          online=args.online, session_trials=trials_of, only=only)
    except UnknownFoldError as e:
        raise ValueError(f"--held-out: {e}") from None
    _print_reports([report], args)
    return 0


def cmd_merge_reports(args) -> int:
    from bci_stream.evaluation import load_reports, merge_reports

    _print_reports(merge_reports(load_reports(args.reports)), args)
    return 0


def _print_reports(reports: list[dict], args) -> None:
    """The table, and the reports as JSON (``--report``: one report, or a list of several) and figures (``--plots``)."""
    import json

    from bci_stream.evaluation import format_report

    print(format_report(reports))
    if args.report:
        Path(args.report).write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    if args.plots:
        from bci_stream.plots import write_plots

        for path in write_plots(reports, args.plots):
            print(f"wrote {path}", file=sys.stderr)


def cmd_synthesize(args) -> int:
    from bci_stream.datasets.synthetic import write_seed_folder
    from bci_stream.progress import Progress

    progress = Progress(args.participants * args.sessions, "synthesize", args.quiet)
    folder = write_seed_folder(args.folder, args.participants, args.sessions, args.trial_seconds, args.seed, progress,
                               jobs=args.jobs, difficulty=args.difficulty)
    print(f"wrote a SEED-layout dataset to {folder}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- replay
#: Without --wait, a replay shorter than _REPLAY_SHORT seconds (one pass, at --speed) waits up to _REPLAY_AUTO_WAIT
#: seconds for a consumer: it would otherwise be over before a consumer started next has resolved it.
_REPLAY_SHORT, _REPLAY_AUTO_WAIT = 60.0, 30.0


def cmd_replay(args) -> int:
    from bci_stream.devices.files import FileSource
    from bci_stream.outlets import EEGOutlet, MarkerOutlet
    from bci_stream.progress import Progress
    from bci_stream.stream import StreamInfo

    opts = _dataset_options(args) | {k: v for k, v in (("stream", args.stream), ("unit", args.unit)) if v is not None}
    src = FileSource(args.path, speed=args.speed, realtime=True, loop=args.loop, trial=args.trial, **opts)
    rec, g = src.recording, src.info
    info = StreamInfo(args.name, g.channel_names, g.srate, g.unit, source_id=f"bci-stream-replay:{args.name}",
                      device=g.device)
    eeg = EEGOutlet(info)
    markers = MarkerOutlet(f"{args.name}-markers", f"bci-stream-replay:{args.name}:markers",
                           {"file": rec.path, "classes": ",".join(rec.class_names), "speed": args.speed})
    n = rec.n_samples
    print(f"replaying {rec.path} ({info.n_channels} ch @ {info.srate:g} Hz, {n / info.srate:.1f} s, "
          f"{len(rec.trials)} trial(s)) at {args.speed:g}x as LSL stream {args.name!r}, markers on "
          f"{args.name + '-markers'!r}", file=sys.stderr, flush=True)
    wait = args.wait
    if wait is None:
        wait = _REPLAY_AUTO_WAIT if not args.loop and n / info.srate / args.speed < _REPLAY_SHORT else 0.0
        if wait:
            print(f"waiting up to {wait:g} s for a consumer of {args.name!r} (the replay lasts only "
                  f"{n / info.srate / args.speed:.1f} s; --wait 0 starts at once)", file=sys.stderr, flush=True)
    if wait and not eeg.outlet.wait_for_consumers(wait):
        print(f"no consumer of {args.name!r} within {wait:g} s; starting anyway", file=sys.stderr, flush=True)
    stop = _Stop()
    # Progress in samples of one pass; a loop has no end, so it shows none.
    progress = Progress(n, "replay", quiet=args.loop)
    try:
        for chunk in src.chunks():
            eeg.push(chunk)
            for ts, text in src.due_markers():
                markers.push(text, ts)
            progress.update(len(chunk))
            if stop():
                break
        else:
            time.sleep(0.5)  # LSL sends on its own thread: let the last chunk leave before the outlets close
    finally:
        src.close()
        eeg.close()
        markers.close()
    print(f"done: {src.reached} samples ({src.reached / n:.2f} passes); chunks left {src.pacer.lag_mean * 1e3:.3f} ms "
          f"after their last sample was due on average, {src.pacer.lag_max * 1e3:.3f} ms at most", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- features
def cmd_features(args) -> int:
    import numpy as np

    from bci_stream.featurecache import dataset_features

    participants = [p.strip() for p in args.participants.split(",") if p.strip()] if args.participants else None
    t0 = time.perf_counter()
    out, cached = dataset_features(_open_dataset(args), args.output, args.features, args.window, args.hop,
                                   args.baseline, cache_dir=False if args.no_cache else args.cache_dir,
                                   quiet=args.quiet, participants=participants)
    with np.load(out) as z:
        shape, people = z["X"].shape, len(np.unique(z["participant"]))
    how = "from the cache" if cached else f"computed in {time.perf_counter() - t0:.1f} s"
    print(f"wrote {out}: {shape[0]} windows x {shape[1]} features from {people} participants ({how})", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- parser
def _summary(obj) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0].rstrip(".")


def _datasets(read_from_files: bool = False) -> dict:
    """Registered dataset classes by name; with ``read_from_files`` only those read from a folder."""
    from bci_stream import registry

    return {name: d for name, d in registry.datasets().items() if d.needs_root or not read_from_files}


def _file_formats() -> dict:
    """Registered datasets with a file format of their own, which ``replay`` reads with their options."""
    return {name: d for name, d in _datasets(True).items() if d.has_file_format()}


def _add_dataset_options(parser: argparse.ArgumentParser, datasets: dict, baseline: bool = False) -> None:
    """A group of flags per dataset from its ``options``, defaulting to None so that what was given is known;
    an option several datasets share is one flag."""
    owners: dict[str, tuple[str, list[str]]] = {}  # option -> (flag, datasets that take it)
    for name, dataset in datasets.items():
        group = parser.add_argument_group(f"{name} dataset", _summary(dataset)) if dataset.options else None
        for o in dataset.options:
            if o.name not in owners:
                group.add_argument(o.flag, dest=o.name, type=o.type, choices=o.choices, default=None,
                                   help=o.help + ("" if o.default is None else f" (default {o.default})"))
            owners.setdefault(o.name, (o.flag, []))[1].append(name)
    parser.set_defaults(dataset_options=owners)
    if baseline:
        having = [name for name, d in datasets.items() if d.has_baseline]
        parser.add_argument("--baseline", choices=["drop", "subtract"], default="drop",
                            help="drop a recorded pre-trial baseline, or subtract its mean features "
                                 f"(datasets that have one: {', '.join(having) or 'none'})")


def _dataset_options(args, dataset: str | None = None) -> dict:
    """The dataset options given on the command line (the dataset's defaults for the rest);
    one that ``dataset`` does not take is an error."""
    given = {k: getattr(args, k) for k in args.dataset_options if getattr(args, k) is not None}
    for flag, owners in (args.dataset_options[k] for k in given):
        if dataset is not None and dataset not in owners:
            raise ValueError(f"{flag} is an option of dataset {', '.join(owners)}, not {dataset}")
    return given


def build_parser() -> argparse.ArgumentParser:
    from bci_stream import registry
    from bci_stream.devices.synthetic import DIFFICULTY, LAYOUTS

    p = argparse.ArgumentParser(prog="bci-stream", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--progress", choices=["bar", "quiet", "json"],
                   help="progress of long work on stderr: a bar, nothing, or one JSON object per line "
                        "(default: $BCI_STREAM_PROGRESS, else bar)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("devices", help="list sources, synthetic layouts and visible LSL streams")
    d.add_argument("--wait", type=_SECONDS, default=1.0, help="seconds to look for LSL streams")
    d.set_defaults(func=cmd_devices)

    s = sub.add_parser("simulate", help="publish synthetic EEG (and its true emotion) on LSL")
    s.add_argument("--layout", choices=list(LAYOUTS), default="seed62")
    s.add_argument("--participant", default="1")
    s.add_argument("--session", default="1")
    s.add_argument("--name", default="bci-stream-sim")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--srate", type=_number(float, 0, what="Hz"), default=None, help="override the layout's sampling rate")
    s.add_argument("--trial", type=_SECONDS, default=20.0, help="seconds each emotion lasts")
    s.add_argument("--duration", type=_SECONDS, default=None, help="seconds; default: until interrupted")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("run", help="decode a source live and publish labels on LSL")
    r.add_argument("--source",
                   help="synthetic:seed62 | synthetic:deap32 | brainflow:synthetic | brainflow:BOARD?key=value&... "
                        "| lsl:name=NAME | lsl:type=TYPE | lsl:source_id=ID")
    r.add_argument("--model", help="model bundle: a path, or a bundled model's name (see `bci-stream devices`); "
                                   "default: the bundled model that fits the source's montage best")
    r.add_argument("--rename", type=_rename, metavar="OLD=NEW,...",
                   help="rename the stream's channels before matching them to the model's (adds to the config's [rename])")
    r.add_argument("--max-interpolated", type=_number(float, 0, inclusive=True, what="a fraction"), metavar="FRACTION",
                   help="the share of the model's channels that may be missing and interpolated (default 0.25)")
    r.add_argument("--participant", help="stratum participant (default: anonymous)")
    r.add_argument("--session", help="stratum session (default: 1, or a fresh id when no participant is given)")
    r.add_argument("--name", help="prefix of the output LSL streams (default: bci-stream)")
    r.add_argument("--window", type=_SECONDS, help="window length in s (default: the model's)")
    r.add_argument("--hop", type=_SECONDS, help="hop in s (default: the model's)")
    r.add_argument("--duration", type=_SECONDS, help="seconds of stream to process; default: until interrupted")
    r.add_argument("--device", help="torch device: cpu (default) or cuda")
    r.add_argument("--log", help="append predictions to this JSON-lines file")
    r.add_argument("--seed", type=int, default=None, help="seed of a synthetic source")
    r.add_argument("--state-dir", help=f"where per-stratum normalizer statistics persist (default {_default_state_dir()})")
    r.add_argument("--no-state", action="store_true", default=None, help="neither resume nor save normalizer statistics")
    r.add_argument("--fresh", action="store_true", help="start this stratum's statistics empty")
    r.add_argument("--checkpoint", type=_SECONDS, metavar="SECONDS",
                   help="save the current stratum's statistics this often while running (default 10)")
    r.add_argument("-q", "--quiet", action=argparse.BooleanOptionalAction, help="no line per prediction")
    r.add_argument("--bandpass", type=_bandpass, help="LOW,HIGH in Hz or off (default: the model's)")
    r.add_argument("--notch", type=_off_or_float, help="mains notch in Hz or off (default: the model's)")
    r.add_argument("--artifacts", dest="detect", action=argparse.BooleanOptionalAction,
                   help="label windows with high amplitude on many channels 'artifact' and keep them out of the "
                        "statistics (default on; thresholds in the config's [artifacts])")
    r.add_argument("--control", metavar="NAME",
                   help="LSL Markers stream whose markers participant=P;session=S switch the stratum live")
    r.add_argument("--config", help="TOML file with these settings; flags override it")
    r.add_argument("--print-config", action="store_true", help="print the effective settings as TOML and exit")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("view", help="live viewer: EEG traces, channel quality, band power, decoded label, stream status")
    what = v.add_mutually_exclusive_group(required=True)
    what.add_argument("--source", help="run the pipeline in this process on SOURCE (as for run)")
    what.add_argument("--attach", metavar="PREFIX", help="show the pipeline publishing PREFIX-labels on LSL")
    v.add_argument("--model", help="with --source: model bundle (default: the bundled one matching the source)")
    v.add_argument("--participant", help="with --source: stratum participant")
    v.add_argument("--session", help="with --source: stratum session")
    v.add_argument("--seed", type=int, help="with --source: seed of a synthetic source")
    v.add_argument("--timeout", type=_SECONDS, default=10.0, help="with --attach: seconds to wait for the streams")
    v.add_argument("--duration", type=_SECONDS, help="close after this many seconds")
    v.add_argument("--screenshot", metavar="PNG", help="with --duration: save the window here before closing")
    v.set_defaults(func=cmd_view)

    for cmd, func, text in (("train", cmd_train, "train a model bundle across participants"),
                            ("evaluate", cmd_evaluate, "cross-participant evaluation, offline and through the live path")):
        t = sub.add_parser(cmd, help=text)
        datasets = _datasets()
        generated = [name for name, d in datasets.items() if not d.needs_root]
        t.add_argument("dataset_dir", nargs="?", help="dataset folder (its root or its data folder); "
                                                     f"none for a generated dataset ({', '.join(generated)})")
        t.add_argument("--dataset", choices=list(datasets), default="synthetic",
                       help="; ".join(f"{name}: {_summary(d)}" for name, d in datasets.items()))
        t.add_argument("--features", default="de",
                       help=f"feature extractor: {', '.join(registry.plugin_names('features'))} (default de)")
        t.add_argument("--norm", choices=["stratified", "batch", "none"], default="stratified")
        t.add_argument("--classes", help="keep only these classes, e.g. negative,positive (SEED's 2-class task): "
                       "offline their windows alone are used, statistics included; online every trial streams "
                       "and only these are scored")
        t.add_argument("--model", help=f"model: {', '.join(registry.plugin_names('models'))} (default featurenet)")
        montage = t.add_mutually_exclusive_group()
        montage.add_argument("--channels-of", metavar="SOURCE",
                             help="train for the montage of this source (file:cap.vhdr, lsl:name=X, brainflow:cyton, ...): "
                                  "its EEG channels, those the dataset lacks interpolated from the dataset's")
        montage.add_argument("--channels", metavar="A,B,...", help="train for this montage (channel names)")
        t.add_argument("--window", type=_SECONDS, default=1.0)
        t.add_argument("--train-hop", type=_SECONDS, default=0.5, help="hop between training windows, s")
        t.add_argument("--epochs", type=_COUNT, default=100)
        t.add_argument("--batch-strata", type=_COUNT, help="strata per minibatch (default: full batch)")
        t.add_argument("--live-pass", action=argparse.BooleanOptionalAction, default=False,
                       help="also train on each session replayed in random trial order through running statistics, "
                            "as the live path normalizes (stratified only; off by default, as Fdez et al. 2021 "
                            "trained: it cost the calibrated benchmark 2 points, at twice the time)")
        t.add_argument("--class-aware", nargs="?", const="on", default="on", choices=("on", "off", "auto"),
                       help="live input statistics leave out each window's emotion as the model judges it, so a "
                            "session that has seen one emotion does not take it for the person's level (stratified "
                            "only; what is left out fades back in with a half-life as long as the training clips, "
                            "so a wrong guess does not stick; on by default, see the README); "
                            "auto: on or off, whichever decodes held-out training participants better online")
        t.add_argument("--no-class-aware", dest="class_aware", action="store_const", const="off",
                       help="the same as --class-aware off")
        t.add_argument("--population", action=argparse.BooleanOptionalAction, default=False,
                       help="also train a model on each window's relative band profile, referenced to the training "
                            "population, that speaks for a new person while their own statistics are young "
                            "(stratified, log-power features only; off by default: it helped on one generated "
                            "dataset and hurt on another, see the README)")
        t.add_argument("--level-seconds", type=_number(float, 0, inclusive=True, what="seconds"),
                       metavar="SECONDS",
                       help="a session's input level leaves its warm-up prior (the population's, or the person's "
                            "earlier sessions') after this long across the directions the classes do not separate, "
                            "and as slowly as the prior says along them "
                            "(stratified only; 0: as slowly everywhere; default 3)")
        t.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("-q", "--quiet", action="store_true")
        _add_dataset_options(t, datasets, baseline=True)
        t.set_defaults(func=func)
        if cmd == "train":
            t.add_argument("--hop", type=_SECONDS, default=0.1, help="hop the bundle runs at live, s")
            t.add_argument("-o", "--output", required=True)
        else:
            t.add_argument("--protocol", choices=["loso", "kfold"], default="loso",
                           help="leave one participant out, or k folds of whole trials")
            t.add_argument("--folds", type=_number(int, 2, inclusive=True), default=5, metavar="K",
                           help="folds of --protocol kfold (default 5)")
            t.add_argument("--held-out", metavar="P,P,...",
                           help="with --protocol loso: hold out only these participants, one at a time (a long run in "
                                "parts; join their --report files with merge-reports)")
            t.add_argument("--online", action="store_true", help="also replay held-out sessions through the live path")
            _add_report_options(t)

    mr = sub.add_parser("merge-reports", help="join evaluate reports that each held out some participants into the "
                                              "report of one run over all of them")
    mr.add_argument("reports", nargs="+", metavar="REPORT", help="JSON files written by evaluate --report")
    _add_report_options(mr)
    mr.set_defaults(func=cmd_merge_reports)

    sy = sub.add_parser("synthesize", help="write a synthetic SEED-like dataset in SEED's file layout")
    sy.add_argument("folder")
    sy.add_argument("--participants", type=_COUNT, default=15)
    sy.add_argument("--sessions", type=_COUNT, default=3)
    sy.add_argument("--trial-seconds", type=_SECONDS, default=60.0)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--difficulty", choices=tuple(DIFFICULTY), default="easy",
                    help="generator preset: easy, or seed (calibrated to the SEED paper's published cross-person "
                         "figures)")
    sy.add_argument("--jobs", type=_COUNT, default=1, help="sessions generated in parallel processes (the same files)")
    sy.add_argument("-q", "--quiet", action="store_true")
    sy.set_defaults(func=cmd_synthesize)

    rp = sub.add_parser("replay", help="publish a recorded file on LSL in real time, with its markers")
    rp.add_argument("path", help="any file MNE reads (EDF, BDF, FIF, EEGLAB .set, BrainVision .vhdr, ...), XDF, "
                                 "a DEAP sNN.dat or a SEED <subject>_<date>.mat")
    rp.add_argument("--speed", type=_number(float, 0, what="a speed factor"), default=1.0, help="1 = real time, 10 = ten times faster")
    rp.add_argument("--loop", action="store_true", help="start again at the end, until interrupted")
    rp.add_argument("--name", default="bci-stream-replay", help="LSL stream name; markers go on NAME-markers")
    rp.add_argument("--trial", type=_COUNT, help="replay only this trial (numbered from 1)")
    rp.add_argument("--stream", help="XDF: name or type of the EEG stream (default: the one of type EEG)")
    rp.add_argument("--unit", help="MNE files and XDF: the unit the file's EEG really is in, where its reader or its "
                                   "metadata says otherwise (e.g. microvolts)")
    _add_dataset_options(rp, _file_formats())
    rp.add_argument("--wait", type=_number(float, 0, inclusive=True, what="seconds"), default=None,
                    help="seconds to wait for a consumer of the EEG stream first; 0 = start at once (default: up to "
                         f"{_REPLAY_AUTO_WAIT:g} s when one pass lasts under {_REPLAY_SHORT:g} s and not --loop, "
                         "so a consumer started next still sees it from the start; else 0)")
    rp.set_defaults(func=cmd_replay)

    fe = sub.add_parser("features", help="windowed features of a whole dataset, into one .npz")
    recorded = _datasets(read_from_files=True)
    fe.add_argument("dataset_dir", help="the dataset's folder (its root or its data folder)")
    fe.add_argument("--dataset", choices=list(recorded), required=True,
                    help="; ".join(f"{name}: {_summary(d)}" for name, d in recorded.items()))
    fe.add_argument("--features", default="de",
                    help=f"feature extractor: {', '.join(registry.plugin_names('features'))} (default de)")
    fe.add_argument("--window", type=_SECONDS, default=1.0, help="window length, s")
    fe.add_argument("--hop", type=_SECONDS, default=0.5, help="hop between windows, s")
    _add_dataset_options(fe, recorded, baseline=True)
    fe.add_argument("--participants", help="comma-separated participant ids (default: all)")
    fe.add_argument("--cache-dir", help="feature cache (default $BCI_STREAM_CACHE_DIR or ~/.cache/bci-stream/features)")
    fe.add_argument("--no-cache", action="store_true", help="neither reuse nor store cached features")
    fe.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    fe.add_argument("-o", "--output", required=True, help="output .npz")
    fe.set_defaults(func=cmd_features)
    return p


#: Where liblsl looks for a configuration file of the user's (besides $LSLAPICFG).
LSL_CONFIGS = ("lsl_api.cfg", "~/lsl_api/lsl_api.cfg", "/etc/lsl_api/lsl_api.cfg")


def _quiet_liblsl() -> None:
    """liblsl writes INFO lines to stderr at its first use, which would bury a one-line error; only its errors
    are let through, unless the user configures liblsl themselves."""
    if "LSLAPICFG" not in os.environ and not any(Path(p).expanduser().exists() for p in LSL_CONFIGS):
        import pylsl

        pylsl.set_config_content("[log]\nlevel = -2\n")


def _add_report_options(p) -> None:
    p.add_argument("--report", help="write the report as JSON here")
    p.add_argument("--plots", help="write PNG figures into this folder")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_liblsl()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from bci_stream import progress
    from bci_stream.bundle import BundleError
    from bci_stream.registry import UnknownNameError
    from bci_stream.sources import SourceError

    try:
        if args.progress:
            progress.set_mode(args.progress)
        return args.func(args)
    except (SourceError, BundleError, UnknownNameError, ValueError, FileNotFoundError) as e:
        print(f"bci-stream {args.command}: error: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """The console command: ``main``, then out at once. Once ``main`` returns, statistics are saved and outputs
    closed; what is left is the interpreter's teardown, of which torch's alone takes about half a second, and a
    run told to stop (SIGTERM while its stream is stalled) must be gone within one."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
