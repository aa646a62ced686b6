"""The ``bci-stream`` command line: devices, simulate, run, train, replay, features."""

from __future__ import annotations

import argparse
import dataclasses
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
def cmd_run(args) -> int:
    from bci_stream import config

    settings = config.apply(args)
    if args.print_config:
        print(config.dumps(settings), end="")
        return 0
    if not args.source:
        raise SystemExit("bci-stream run: no source; give --source or `source` in the --config file")

    import torch

    from bci_stream.bundle import ModelBundle, default_bundle_for
    from bci_stream.control import StratumControl
    from bci_stream.filters import FilterSpec
    from bci_stream.outlets import PredictionOutlet
    from bci_stream.pipeline import Pipeline
    from bci_stream.plugins.sinks import ConsolePrinter, JsonlLog
    from bci_stream.quality import QualityMonitor
    from bci_stream.sources import open_source

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bci-stream run: --device cuda asked for, but torch sees no CUDA device")
    torch.set_num_threads(1)  # one window at a time: threads only add latency
    participant = args.participant or "anonymous"
    session = args.session or (time.strftime("%Y%m%dT%H%M%S") if args.participant is None else "1")
    source = open_source(args.source, participant=args.participant, session=args.session, seed=args.seed)
    with source:
        bundle = ModelBundle.load(args.model) if args.model else default_bundle_for(source.info)
        meta = {"model": bundle.name or Path(args.model or "").name, "participant": participant, "session": session,
                "window": args.window or bundle.window, "hop": args.hop or bundle.hop,
                "source": args.source, "source_uid": source.info.extra.get("uid", source.info.source_id)}
        outlet = PredictionOutlet(args.name, bundle.class_names, meta)
        sinks = [outlet]
        if not args.quiet:
            sinks.append(ConsolePrinter())
        if args.log:
            sinks.append(JsonlLog(args.log))
        state_dir = None if args.no_state else Path(args.state_dir) if args.state_dir else _default_state_dir()
        filters = {**bundle.filters, **{k: None if v == "off" else v for k, v in settings["filters"].items()
                                         if v is not None}}
        pipe = Pipeline(source.info, bundle, participant, session, args.window, args.hop, args.device, sinks,
                        state_dir=state_dir, filters=FilterSpec.from_dict(filters))
        if args.fresh:
            pipe.reset_stratum()
        hooks = [QualityMonitor(source.info, config.thresholds(settings))]
        if args.control:
            hooks.append(StratumControl(args.control, pipe, outlet.report))
        print(f"running model {meta['model']!r} on {source.info.name!r} ({source.info.n_channels} ch @ "
              f"{source.info.srate:g} Hz) as stratum {participant}/{session}; labels on {args.name + '-labels'!r}",
              file=sys.stderr, flush=True)
        try:
            pipe.run(source.chunks(), duration=args.duration, should_stop=_Stop(), hooks=hooks)
        finally:
            pipe.close()
        s = pipe.summary()
        print(f"done: {s['predictions']} predictions from {s['windows']} windows, "
              f"{s['rejected_nonfinite']} rejected (NaN/Inf)", file=sys.stderr)
        for stage, v in s["stage_ms"].items():
            print(f"  {stage:<10} p50 {v['p50']:.3f} ms  p99 {v['p99']:.3f} ms", file=sys.stderr)
    return 0


def _off_or_float(text: str):
    if text == "off":
        return "off"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frequency in Hz or off, got {text!r}") from None


def _bandpass(text: str):
    if text == "off":
        return "off"
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in Hz (e.g. 1,50) or off, got {text!r}") from None
    return [low, high]


# ---------------------------------------------------------------- view
def cmd_view(args) -> int:
    from bci_stream.plugins.viewer import view

    if args.screenshot and args.duration is None:
        raise SystemExit("bci-stream view: --screenshot needs --duration (when to take it)")
    return view(source=args.source, attach=args.attach, duration=args.duration, screenshot=args.screenshot,
                model=args.model, participant=args.participant, session=args.session, seed=args.seed,
                timeout=args.timeout)


# ---------------------------------------------------------------- train
def _dataset(args):
    """(FeatureSet, trials of one participant) for train/evaluate, from a folder or the generator."""
    opts = _deap_options(args)
    if args.dataset != "deap" and (opts or args.baseline != "drop"):
        raise ValueError(f"--target, --threshold and --baseline are DEAP's options, not {args.dataset}'s")
    if args.dataset == "synthetic":
        from bci_stream.batch import build_features
        from bci_stream.devices.synthetic import LAYOUTS, synthetic_trials

        def trials_of(participants):
            return synthetic_trials(args.layout, participants, range(1, args.sessions + 1), args.trials,
                                    seed=args.seed, trial_seconds=args.trial_seconds)

        n = args.participants * args.sessions * args.trials
        fs = build_features(trials_of(range(1, args.participants + 1)), n, LAYOUTS[args.layout].classes,
                            args.features, args.window, args.train_hop, quiet=args.quiet)
    else:
        if not args.dataset_dir:
            raise ValueError(f"--dataset {args.dataset} needs DATASET_DIR")
        from bci_stream.devices.datasets import dataset_trials
        from bci_stream.featurecache import feature_set

        if args.baseline == "subtract" and getattr(args, "online", False):
            raise ValueError("--baseline subtract has no live counterpart (a live session has no pre-trial "
                             "baseline per trial); evaluate --online with --baseline drop")

        def trials_of(participants):
            return dataset_trials(args.dataset, args.dataset_dir, participants=participants, **opts)[1]

        fs = feature_set(args.dataset, args.dataset_dir, features=args.features, window=args.window,
                         hop=args.train_hop, baseline=args.baseline, quiet=args.quiet, **opts)
    if not args.classes:
        return fs, lambda p: trials_of([p])
    from bci_stream.batch import select_classes

    fs, mapping = select_classes(fs, args.classes.split(","))
    # Live, the other classes' trials still stream (and feed the statistics); they are just not scored.
    return fs, lambda p: (dataclasses.replace(t, label=mapping.get(t.label, -1)) for t in trials_of([p]))


def cmd_train(args) -> int:
    from bci_stream.training import train_bundle

    fs, _ = _dataset(args)
    name = f"{args.dataset}-{args.layout}" if args.dataset == "synthetic" else f"{args.dataset}-{args.features}-{args.norm}"
    bundle = train_bundle(fs, name, args.norm, args.model, epochs=args.epochs, seed=args.seed, device=args.device,
                          hop=args.hop, quiet=args.quiet, batch_strata=args.batch_strata, live_pass=args.live_pass)
    if args.dataset == "synthetic":
        bundle.report["generator"] = {"layout": args.layout, "participants": args.participants,
                                      "sessions": args.sessions, "trials": args.trials,
                                      "trial_seconds": args.trial_seconds, "seed": args.seed}
    path = bundle.save(args.output)
    r = bundle.report
    print(f"wrote {path}: {r['windows']} windows from {r['participants']} participants in {r['train_seconds']} s; "
          f"held-out participants' accuracy {r.get('heldout_accuracy', float('nan')):.3f}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    import json

    from bci_stream.evaluation import evaluate, format_report

    fs, trials_of = _dataset(args)
    report = evaluate(fs, args.norm, args.protocol, args.model, args.epochs, args.seed, args.device, args.online,
                      session_trials=trials_of, dataset=args.dataset, quiet=args.quiet, batch_strata=args.batch_strata,
                      live_pass=args.live_pass)
    print(format_report([report]))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    if args.plots:
        from bci_stream.plots import write_plots

        for path in write_plots([report], args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_synthesize(args) -> int:
    from bci_stream.devices.synthetic import write_seed_folder
    from bci_stream.progress import Progress

    progress = Progress(args.participants * args.sessions, "synthesize", args.quiet)
    folder = write_seed_folder(args.folder, args.participants, args.sessions, args.trial_seconds, args.seed, progress)
    print(f"wrote a SEED-layout dataset to {folder}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- replay
def cmd_replay(args) -> int:
    from bci_stream.devices.files import FileSource
    from bci_stream.outlets import EEGOutlet, MarkerOutlet
    from bci_stream.progress import Progress
    from bci_stream.stream import StreamInfo

    opts = _deap_options(args) | ({"stream": args.stream} if args.stream is not None else {})
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
    if args.wait and not eeg.outlet.wait_for_consumers(args.wait):
        print(f"no consumer of {args.name!r} within {args.wait:g} s; starting anyway", file=sys.stderr, flush=True)
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

    opts = _deap_options(args)
    if args.participants:
        opts["participants"] = [p.strip() for p in args.participants.split(",") if p.strip()]
    t0 = time.perf_counter()
    out, cached = dataset_features(args.dataset, args.dataset_dir, args.output, args.features, args.window, args.hop,
                                   args.baseline, cache_dir=False if args.no_cache else args.cache_dir,
                                   quiet=args.quiet, **opts)
    with np.load(out) as z:
        shape, people = z["X"].shape, len(np.unique(z["participant"]))
    how = "from the cache" if cached else f"computed in {time.perf_counter() - t0:.1f} s"
    print(f"wrote {out}: {shape[0]} windows x {shape[1]} features from {people} participants ({how})", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- parser
def _add_deap_options(parser: argparse.ArgumentParser, baseline: bool = False) -> None:
    g = parser.add_argument_group("DEAP")
    g.add_argument("--target", choices=["valence", "arousal", "valence-arousal"],
                   help="which rating gives the true label (default valence)")
    g.add_argument("--threshold", type=float, help="ratings above it are high (default 5)")
    if baseline:
        g.add_argument("--baseline", choices=["drop", "subtract"], default="drop",
                       help="drop the 3-s pre-trial baseline, or subtract its mean features")


def _deap_options(args) -> dict:
    """The DEAP reader options given on the command line (the reader's defaults for the rest)."""
    return {k: v for k, v in (("target", args.target), ("threshold", args.threshold)) if v is not None}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bci-stream", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--progress", choices=["bar", "quiet", "json"],
                   help="progress of long work on stderr: a bar, nothing, or one JSON object per line "
                        "(default: $BCI_STREAM_PROGRESS, else bar)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("devices", help="list sources, synthetic layouts and visible LSL streams")
    d.add_argument("--wait", type=float, default=1.0, help="seconds to look for LSL streams")
    d.set_defaults(func=cmd_devices)

    s = sub.add_parser("simulate", help="publish synthetic EEG (and its true emotion) on LSL")
    s.add_argument("--layout", choices=["seed62", "deap32", "brainflow16"], default="seed62")
    s.add_argument("--participant", default="1")
    s.add_argument("--session", default="1")
    s.add_argument("--name", default="bci-stream-sim")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--srate", type=float, default=None, help="override the layout's sampling rate")
    s.add_argument("--trial", type=float, default=20.0, help="seconds each emotion lasts")
    s.add_argument("--duration", type=float, default=None, help="seconds; default: until interrupted")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("run", help="decode a source live and publish labels on LSL")
    r.add_argument("--source",
                   help="synthetic:seed62 | synthetic:deap32 | brainflow:synthetic | brainflow:BOARD?key=value&... "
                        "| lsl:name=NAME | lsl:type=TYPE | lsl:source_id=ID")
    r.add_argument("--model", help="model bundle; default: the bundled one matching the source's montage")
    r.add_argument("--participant", help="stratum participant (default: anonymous)")
    r.add_argument("--session", help="stratum session (default: 1, or a fresh id when no participant is given)")
    r.add_argument("--name", help="prefix of the output LSL streams (default: bci-stream)")
    r.add_argument("--window", type=float, help="window length in s (default: the model's)")
    r.add_argument("--hop", type=float, help="hop in s (default: the model's)")
    r.add_argument("--duration", type=float, help="seconds of stream to process; default: until interrupted")
    r.add_argument("--device", help="torch device: cpu (default) or cuda")
    r.add_argument("--log", help="append predictions to this JSON-lines file")
    r.add_argument("--seed", type=int, default=None, help="seed of a synthetic source")
    r.add_argument("--state-dir", help=f"where per-stratum normalizer statistics persist (default {_default_state_dir()})")
    r.add_argument("--no-state", action="store_true", default=None, help="neither resume nor save normalizer statistics")
    r.add_argument("--fresh", action="store_true", help="start this stratum's statistics empty")
    r.add_argument("-q", "--quiet", action=argparse.BooleanOptionalAction, help="no line per prediction")
    r.add_argument("--bandpass", type=_bandpass, help="LOW,HIGH in Hz or off (default: the model's)")
    r.add_argument("--notch", type=_off_or_float, help="mains notch in Hz or off (default: the model's)")
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
    v.add_argument("--timeout", type=float, default=10.0, help="with --attach: seconds to wait for the streams")
    v.add_argument("--duration", type=float, help="close after this many seconds")
    v.add_argument("--screenshot", metavar="PNG", help="with --duration: save the window here before closing")
    v.set_defaults(func=cmd_view)

    for cmd, func, text in (("train", cmd_train, "train a model bundle across participants"),
                            ("evaluate", cmd_evaluate, "cross-participant evaluation, offline and through the live path")):
        t = sub.add_parser(cmd, help=text)
        t.add_argument("dataset_dir", nargs="?", help="dataset folder (SEED's Preprocessed_EEG, DEAP's "
                                                     "data_preprocessed_python); none for --dataset synthetic")
        t.add_argument("--dataset", choices=["seed", "deap", "synthetic"], default="synthetic")
        t.add_argument("--features", default="de", help="de | bandpower | multitaper | deap99")
        t.add_argument("--norm", choices=["stratified", "batch", "none"], default="stratified")
        t.add_argument("--classes", help="keep only these classes, e.g. negative,positive (SEED's 2-class task)")
        t.add_argument("--model", help="featurenet (default), deap-dnn or deap-cnn")
        t.add_argument("--window", type=float, default=1.0)
        t.add_argument("--train-hop", type=float, default=0.5, help="hop between training windows, s")
        t.add_argument("--epochs", type=int, default=100)
        t.add_argument("--batch-strata", type=int, help="strata per minibatch (default: full batch)")
        t.add_argument("--live-pass", action=argparse.BooleanOptionalAction, default=True,
                       help="also train on each session replayed in random trial order through running statistics, "
                            "as the live path normalizes (stratified only; --no-live-pass trains as Fdez et al. 2021)")
        t.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("-q", "--quiet", action="store_true")
        _add_deap_options(t, baseline=True)
        g = t.add_argument_group("synthetic dataset")
        g.add_argument("--layout", choices=["seed62", "deap32", "brainflow16"], default="seed62")
        g.add_argument("--participants", type=int, default=10)
        g.add_argument("--sessions", type=int, default=2)
        g.add_argument("--trials", type=int, default=6, help="trials per session")
        g.add_argument("--trial-seconds", type=float, default=20.0)
        t.set_defaults(func=func)
        if cmd == "train":
            t.add_argument("--hop", type=float, default=0.1, help="hop the bundle runs at live, s")
            t.add_argument("-o", "--output", required=True)
        else:
            t.add_argument("--protocol", choices=["loso", "kfold"], default="loso")
            t.add_argument("--online", action="store_true", help="also replay held-out sessions through the live path")
            t.add_argument("--report", help="write the report as JSON here")
            t.add_argument("--plots", help="write PNG figures into this folder")

    sy = sub.add_parser("synthesize", help="write a synthetic SEED-like dataset in SEED's file layout")
    sy.add_argument("folder")
    sy.add_argument("--participants", type=int, default=15)
    sy.add_argument("--sessions", type=int, default=3)
    sy.add_argument("--trial-seconds", type=float, default=60.0)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("-q", "--quiet", action="store_true")
    sy.set_defaults(func=cmd_synthesize)

    rp = sub.add_parser("replay", help="publish a recorded file on LSL in real time, with its markers")
    rp.add_argument("path", help="any file MNE reads (EDF, BDF, FIF, EEGLAB .set, BrainVision .vhdr, ...), XDF, "
                                 "a DEAP sNN.dat or a SEED <subject>_<date>.mat")
    rp.add_argument("--speed", type=float, default=1.0, help="1 = real time, 10 = ten times faster")
    rp.add_argument("--loop", action="store_true", help="start again at the end, until interrupted")
    rp.add_argument("--name", default="bci-stream-replay", help="LSL stream name; markers go on NAME-markers")
    rp.add_argument("--trial", type=int, help="replay only this trial (numbered from 1)")
    rp.add_argument("--stream", help="XDF: name or type of the EEG stream (default: the one of type EEG)")
    _add_deap_options(rp)
    rp.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a consumer of the EEG stream first")
    rp.set_defaults(func=cmd_replay)

    fe = sub.add_parser("features", help="windowed features of a whole dataset, into one .npz")
    fe.add_argument("dataset_dir", help="SEED's Preprocessed_EEG or DEAP's data_preprocessed_python (or their parent)")
    fe.add_argument("--dataset", choices=["seed", "deap"], required=True)
    fe.add_argument("--features", default="de", help="feature extractor: de, bandpower, multitaper, deap99, ...")
    fe.add_argument("--window", type=float, default=1.0, help="window length, s")
    fe.add_argument("--hop", type=float, default=0.5, help="hop between windows, s")
    _add_deap_options(fe, baseline=True)
    fe.add_argument("--participants", help="comma-separated participant ids (default: all)")
    fe.add_argument("--cache-dir", help="feature cache (default $BCI_STREAM_CACHE_DIR or ~/.cache/bci-stream/features)")
    fe.add_argument("--no-cache", action="store_true", help="neither reuse nor store cached features")
    fe.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    fe.add_argument("-o", "--output", required=True, help="output .npz")
    fe.set_defaults(func=cmd_features)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
