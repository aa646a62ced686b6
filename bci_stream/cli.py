"""The ``bci-stream`` command line: devices, simulate, run, train."""

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
    import torch

    from bci_stream.bundle import ModelBundle, default_bundle_for
    from bci_stream.outlets import PredictionOutlet
    from bci_stream.pipeline import Pipeline
    from bci_stream.plugins.sinks import ConsolePrinter, JsonlLog
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
        sinks = [PredictionOutlet(args.name, bundle.class_names, meta)]
        if not args.quiet:
            sinks.append(ConsolePrinter())
        if args.log:
            sinks.append(JsonlLog(args.log))
        state_dir = None if args.no_state else Path(args.state_dir) if args.state_dir else _default_state_dir()
        pipe = Pipeline(source.info, bundle, participant, session, args.window, args.hop, args.device, sinks,
                        state_dir=state_dir)
        if args.fresh and pipe.normalizer is not None:
            pipe.normalizer.strata[pipe.stratum] = type(pipe.normalizer.stats(pipe.stratum))(
                pipe.normalizer.n_features, pipe.normalizer.halflife)
        print(f"running model {meta['model']!r} on {source.info.name!r} ({source.info.n_channels} ch @ "
              f"{source.info.srate:g} Hz) as stratum {participant}/{session}; labels on {args.name + '-labels'!r}",
              file=sys.stderr, flush=True)
        try:
            pipe.run(source.chunks(), duration=args.duration, should_stop=_Stop())
        finally:
            pipe.close()
        s = pipe.summary()
        print(f"done: {s['predictions']} predictions from {s['windows']} windows, "
              f"{s['rejected_nonfinite']} rejected (NaN/Inf)", file=sys.stderr)
        for stage, v in s["stage_ms"].items():
            print(f"  {stage:<10} p50 {v['p50']:.3f} ms  p99 {v['p99']:.3f} ms", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- train
def cmd_train(args) -> int:
    from bci_stream.devices.synthetic import LAYOUTS, synthetic_trials
    from bci_stream.batch import build_features
    from bci_stream.training import train_bundle

    layout = LAYOUTS[args.layout]
    participants = range(1, args.participants + 1)
    sessions = range(1, args.sessions + 1)
    trials = synthetic_trials(args.layout, participants, sessions, args.trials, seed=args.seed,
                              trial_seconds=args.trial_seconds)
    fs = build_features(trials, len(participants) * len(sessions) * args.trials, layout.classes, args.features,
                        args.window, args.train_hop, quiet=args.quiet)
    bundle = train_bundle(fs, f"synthetic-{args.layout}", epochs=args.epochs, seed=args.seed, device=args.device,
                          hop=args.hop, quiet=args.quiet)
    bundle.report["generator"] = {"participants": args.participants, "sessions": args.sessions,
                                  "trials": args.trials, "trial_seconds": args.trial_seconds, "seed": args.seed}
    path = bundle.save(args.output)
    r = bundle.report
    print(f"wrote {path}: {r['windows']} windows from {r['participants']} participants; "
          f"held-out participants' accuracy {r.get('heldout_accuracy', float('nan')):.3f}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bci-stream", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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
    r.add_argument("--source", required=True,
                   help="synthetic:seed62 | synthetic:deap32 | brainflow:synthetic | brainflow:BOARD?key=value&... "
                        "| lsl:name=NAME | lsl:type=TYPE | lsl:source_id=ID")
    r.add_argument("--model", help="model bundle; default: the bundled one matching the source's montage")
    r.add_argument("--participant", help="stratum participant (default: anonymous)")
    r.add_argument("--session", help="stratum session (default: 1, or a fresh id when no participant is given)")
    r.add_argument("--name", default="bci-stream", help="prefix of the output LSL streams")
    r.add_argument("--window", type=float, help="window length in s (default: the model's)")
    r.add_argument("--hop", type=float, help="hop in s (default: the model's)")
    r.add_argument("--duration", type=float, help="seconds of stream to process; default: until interrupted")
    r.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    r.add_argument("--log", help="append predictions to this JSON-lines file")
    r.add_argument("--seed", type=int, default=None, help="seed of a synthetic source")
    r.add_argument("--state-dir", help=f"where per-stratum normalizer statistics persist (default {_default_state_dir()})")
    r.add_argument("--no-state", action="store_true", help="neither resume nor save normalizer statistics")
    r.add_argument("--fresh", action="store_true", help="start this stratum's statistics empty")
    r.add_argument("-q", "--quiet", action="store_true", help="no line per prediction")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("train", help="train a model bundle across participants")
    t.add_argument("--dataset", choices=["synthetic"], default="synthetic")
    t.add_argument("--layout", choices=["seed62", "deap32", "brainflow16"], default="seed62")
    t.add_argument("--participants", type=int, default=10)
    t.add_argument("--sessions", type=int, default=2)
    t.add_argument("--trials", type=int, default=6, help="trials per session")
    t.add_argument("--trial-seconds", type=float, default=20.0)
    t.add_argument("--features", default="de")
    t.add_argument("--window", type=float, default=1.0)
    t.add_argument("--train-hop", type=float, default=0.5, help="hop between training windows, s")
    t.add_argument("--hop", type=float, default=0.1, help="hop the bundle runs at live, s")
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--device", default="cpu")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-q", "--quiet", action="store_true")
    t.add_argument("-o", "--output", required=True)
    t.set_defaults(func=cmd_train)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from bci_stream.bundle import BundleError
    from bci_stream.registry import UnknownNameError
    from bci_stream.sources import SourceError

    try:
        return args.func(args)
    except (SourceError, BundleError, UnknownNameError, ValueError, FileNotFoundError) as e:
        print(f"bci-stream {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
