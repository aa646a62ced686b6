"""Sample -> label latency through real LSL, beside the LSL round-trip floor measured in the same run.

Three processes per configuration, as in a lab: a source pushing synthetic EEG
on LSL in real time, `bci-stream run` decoding it, and this process holding an
independent inlet on the labels. Latency = time a label is received minus the
time the last sample of its window was pushed (its timestamp: samples are
stamped with their scheduled push time and pushed as soon as that time comes).

    python benchmarks/latency.py [--seconds 60] [--configs 32x128,62x200,62x1000,62x1000-12,62x1000+state,...]

``62x1000-12``: the stream lacks 12 of the model's channels (those a real 60-channel 10-20 cap
lacks of SEED's 62), so the pipeline interpolates them: its ``channels`` stage is then a matrix product.
``62x1000+state``: statistics kept in a state folder and checkpointed every second; the other rows run
``--no-state``. ``62x1000+state+switch``: a control stream also switches the stratum twice a second (between
two sessions), each switch saving the stratum it leaves. ``62x1000+pop``: the shipped model with a population model beside it (bci_stream/population.py),
as ``train`` now trains, pooled in for every label (a new person's stratum, never old enough to drop it); its
weights are untrained, which does not change its cost.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl

LAYOUT = {32: "deap32", 62: "seed62"}
#: SEED channels a 60-channel 10-20 cap (the shared eXimia recording) lacks, in the order they are left out.
MISSING = ("AF3", "AF4", "F5", "F6", "P5", "P6", "PO7", "PO5", "PO6", "PO8", "CB1", "CB2")


def push_eeg(name: str, layout: str, srate: float, seconds: float, chunk: int, ready, missing: int = 0) -> None:
    """Real-time EEG source: chunk k is stamped with its scheduled time and pushed when that time comes;
    without the first ``missing`` channels of MISSING."""
    from bci_stream.devices.synthetic import SyntheticEEG
    from bci_stream.outlets import EEGOutlet
    from bci_stream.stream import Chunk, StreamInfo

    gen = SyntheticEEG(layout, srate=srate, seed=1)
    data, _ = gen.generate(round(10 * srate))  # looped: generation stays out of the timed path
    keep = [i for i, c in enumerate(gen.info.channel_names) if c not in MISSING[:missing]]
    data = np.ascontiguousarray(data[:, keep])
    info = StreamInfo(name, [gen.info.channel_names[i] for i in keep], srate, source_id=f"{name}-src")
    out = EEGOutlet(info, chunk_size=chunk)
    ready.set()
    while not out.outlet.have_consumers():
        time.sleep(0.01)
    t0 = pylsl.local_clock() + 0.5
    n_total = round(seconds * srate)
    for start in range(0, n_total, chunk):
        idx = np.arange(start, start + chunk)
        ts = t0 + (idx + 1) / srate
        while pylsl.local_clock() < ts[-1]:
            time.sleep(min(0.0005, max(0.0, ts[-1] - pylsl.local_clock())))
        out.push(Chunk(data[idx % len(data)], ts))


def push_floor(name: str, n: int, ready) -> None:
    """LSL alone: one float sample at a time, stamped when pushed."""
    out = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Floor", 1, 0, "float32", f"{name}-src"))
    ready.set()
    while not out.have_consumers():
        time.sleep(0.01)
    time.sleep(0.3)
    for _ in range(n):
        out.push_sample([0.0], pylsl.local_clock())
        time.sleep(0.01)


def receive(prefix_name: str, until, min_samples: int | None = None) -> np.ndarray:
    """Receive-time minus timestamp for each sample of the stream, until ``until()`` says stop."""
    found = pylsl.resolve_byprop("name", prefix_name, timeout=60)
    if not found:
        raise SystemExit(f"latency benchmark: stream {prefix_name!r} never appeared")
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=10)
    lat = []
    while not until(len(lat)):
        _, ts = inlet.pull_sample(timeout=0.5)
        if ts is not None:
            lat.append(pylsl.local_clock() - ts)
    return np.asarray(lat)


def floor(n: int = 500) -> np.ndarray:
    name = f"floor-{uuid.uuid4().hex[:8]}"
    ready = mp.Event()
    p = mp.Process(target=push_floor, args=(name, n, ready))
    p.start()
    ready.wait(10)
    lat = receive(name, lambda k: k >= n or not p.is_alive() and k > 0)
    p.join()
    return lat


def with_population(layout: str, folder: str) -> str:
    """The shipped bundle ``layout`` with a population model of the shape training gives, saved in ``folder``."""
    from bci_stream.bundle import load_model
    from bci_stream.model import model_class
    from bci_stream.population import PopulationModel
    from bci_stream.training import POPULATION_MODEL

    bundle = load_model(layout)
    n = len(bundle.normalization["prior_mean"])
    kwargs = {"n_features": n, "n_classes": len(bundle.class_names), "norm": "none", "hidden": []}
    net = model_class(POPULATION_MODEL)(**kwargs)
    bundle.population = PopulationModel(POPULATION_MODEL, kwargs, net.state_dict(), np.zeros(n), np.ones(n),
                                        n // len(bundle.channels)).to_dict()
    return str(bundle.save(Path(folder) / f"{layout}-pop.pt"))


def switch_strata(name: str, every: float, until) -> None:
    """Control markers on ``name`` alternating the stratum between sessions 1 and 2 every ``every`` s."""
    from bci_stream.outlets import MarkerOutlet

    ctl = MarkerOutlet(name, f"{name}-src")
    try:
        for k in range(10**9):
            if until():
                return
            ctl.push(f"participant=P;session={1 + k % 2}", pylsl.local_clock())
            time.sleep(every)
    finally:
        ctl.close()


def pipeline_latency(channels: int, srate: float, seconds: float, missing: int = 0,
                     state: str | None = None, model: str | None = None, switch: bool = False) -> tuple[np.ndarray, str]:
    """``state``: a folder to keep statistics in, checkpointed every second (ten times the default rate, so their
    cost on the decoding thread shows in the percentiles); None: ``--no-state``. ``switch``: a control stream
    switches the stratum twice a second."""
    name = f"lat-{uuid.uuid4().hex[:8]}"
    chunk = max(1, round(srate / 100))  # ~10 ms chunks, like most amplifiers
    ready = mp.Event()
    src = mp.Process(target=push_eeg, args=(name, LAYOUT[channels], srate, seconds + 8, chunk, ready, missing))
    src.start()
    ready.wait(30)
    run = subprocess.Popen(
        [str(Path(sys.executable).parent / "bci-stream"), "run", "--source", f"lsl:source_id={name}-src",
         "--name", name, "--duration", str(seconds), "-q", "--model", model or LAYOUT[channels],
         *(["--no-state"] if state is None else ["--state-dir", state, "--checkpoint", "1"]),
         *(["--participant", "P", "--session", "1", "--control", f"{name}-ctl"] if switch else [])],
        stderr=subprocess.PIPE, text=True,
    )
    switching = threading.Thread(target=switch_strata, args=(f"{name}-ctl", 0.5, lambda: run.poll() is not None))
    if switch:
        switching.start()
    lat = receive(f"{name}-labels", lambda k: run.poll() is not None)
    if switch:
        switching.join()
    err = run.communicate()[1]
    src.terminate()
    src.join()
    return lat[20:], err  # the first labels include start-up (first torch call, allocations)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--configs", default="32x128,62x200,62x1000,62x1000-12,62x1000+state",
                    help="CHANNELSxRATE, -N: N channels missing (interpolated), +state: statistics saved, "
                         "checkpointed every second, +switch: the stratum switched twice a second by a control "
                         "stream, +pop: a population model pooled in")
    args = ap.parse_args()
    fl = floor()
    f50, f99 = np.median(fl) * 1e3, np.percentile(fl, 99) * 1e3
    rows = []
    for cfg in args.configs.split(","):
        cfg, *extras = cfg.split("+")
        state, pop, switch = "state" in extras, "pop" in extras, "switch" in extras
        ch, rate = cfg.split("x")
        rate, _, missing = rate.partition("-")
        with tempfile.TemporaryDirectory() as folder:
            model = with_population(LAYOUT[int(ch)], folder) if pop else None
            lat, err = pipeline_latency(int(ch), float(rate), args.seconds, int(missing or 0),
                                        str(Path(folder) / "state") if state else None, model, switch)
        stages = [line.strip() for line in err.splitlines() if " p50 " in line]
        rows.append((f"{ch} ch @ {rate} Hz" + (f", {missing} interp." if missing else "")
                     + (", checkpoints 1/s" if state else "") + (", 2 switches/s" if switch else "")
                     + (", population model" if pop else ""), lat, stages))
    print(f"\nSample -> label latency through LSL, 1 s windows, 100 ms hop, {args.seconds:g} s per row\n")
    w = max(28, *(len(label) for label, _, _ in rows))
    print(f"{'configuration':<{w}} {'labels':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50/floor':>10} {'p99/floor':>10}")
    print(f"{'LSL floor':<{w}} {len(fl):>6} {f50:>8.3f} {f99:>8.3f} {fl.max() * 1e3:>8.3f} {1:>10.1f} {1:>10.1f}")
    for label, lat, _ in rows:
        p50, p99 = np.median(lat) * 1e3, np.percentile(lat, 99) * 1e3
        print(f"{label:<{w}} {len(lat):>6} {p50:>8.3f} {p99:>8.3f} {lat.max() * 1e3:>8.3f} {p50 / f50:>10.1f} {p99 / f99:>10.1f}")
    print("\nPer-stage time inside the pipeline (ms, per chunk):")
    for label, _, stages in rows:
        print(f"  {label}: " + "; ".join(stages))


if __name__ == "__main__":
    main()
