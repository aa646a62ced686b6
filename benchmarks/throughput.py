"""Offline throughput, 8 concurrent streams and memory over an hour, beside the feature floor measured in the same run.

Three parts, each a table (the DESIGN.md targets no other script measures):

- offline: a SEED-like 62 ch x 200 Hz recording through features + normalizer
  + model, as a multiple of real time on one core, by the batch path (the whole
  recording: filters, windows and features by ``recording_features``, then the
  input normalizer and the model over all windows) and by the streaming path
  (``Pipeline.process`` chunk by chunk, as ``replay_session`` drives it). The
  floor is the Welch differential-entropy function alone on the same windows.
- concurrency: 8 Pipelines, each on its own 62 ch x 1000 Hz synthetic stream,
  driven round-robin in one thread with 10-ms chunks; time from a chunk handed
  to ``process`` until its predictions return, against one pipeline alone.
- memory: RSS of this process, sampled every simulated minute, while one
  Pipeline decodes 62 ch x 1000 Hz as fast as it can for an hour of stream time.

Everything runs on one core: torch and BLAS are held to one thread. Synthetic
data is generated once (seeded) and looped, so generation stays out of timings.

    python benchmarks/throughput.py [--seconds 600] [--memory-seconds 3600] [--skip memory] [--hop 0.1]
"""

from __future__ import annotations

import os

# One core: BLAS must not fan out either (read when numpy loads, so before the imports below).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import gc
import multiprocessing as mp
import time

import numpy as np
import torch

from bci_stream import registry
from bci_stream.batch import recording_features, window_starts
from bci_stream.bundle import default_bundle_for
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.filters import CausalFilter, FilterSpec
from bci_stream.pipeline import Pipeline
from bci_stream.progress import Progress
from bci_stream.stream import Chunk
from bci_stream.training import normalize_inputs, predict

PARTS = ("offline", "concurrency", "memory")
#: recording_features cuts this many windows at a time; the floor is timed on the same blocks.
BLOCK = 512
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size now (not the peak, which ``resource`` gives)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def chunks_of(data: np.ndarray, srate: float, step: int, seconds: float):
    """``data`` looped for ``seconds`` of stream time in ``step``-sample chunks, stamped as a live source would."""
    n_total, n = round(seconds * srate), len(data)
    for start in range(0, n_total - step + 1, step):
        a = start % n
        piece = data[a : a + step] if a + step <= n else np.concatenate([data[a:], data[: a + step - n]])
        yield Chunk(piece, (np.arange(start, start + step) + 1) / srate)


def percentiles_us(x) -> tuple[float, float]:
    x = np.asarray(x, np.float64) * 1e6
    return float(np.median(x)), float(np.percentile(x, 99))


# ---------------------------------------------------------------- offline
def feature_floor(data, srate, extractor, filters, window, hop) -> tuple[float, np.ndarray]:
    """The feature function alone, on the windows the batch path cuts (filtered and cut untimed)."""
    x = CausalFilter.from_spec(filters, srate, data.shape[1])(data)
    length, step = round(window * srate), round(hop * srate)
    starts = window_starts(len(x), length, step)
    view = np.lib.stride_tricks.sliding_window_view(x, length, axis=0)
    total, per_window = 0.0, []
    for i in range(0, len(starts), BLOCK):
        w = np.ascontiguousarray(view[starts[i : i + BLOCK]])
        t = time.perf_counter()
        extractor.compute(w, srate)
        dt = time.perf_counter() - t
        total += dt
        per_window += [dt / len(w)] * len(w)
    return total, np.asarray(per_window)


def batch_offline(data, srate, net, bundle, extractor, filters, window, hop) -> int:
    """As ``evaluate`` scores a held-out session: each stratum z-scored over its own windows, strata into the model."""
    X, _ = recording_features(data, srate, extractor, filters, window, hop)
    strata = np.zeros(len(X), np.int64)  # one recording, one (participant, session)
    norm = bundle.report.get("norm", "stratified")
    train_stats = (np.asarray(bundle.normalization["prior_mean"]), np.asarray(bundle.normalization["prior_var"]))
    predict(net, normalize_inputs(X, strata, norm, train_stats), strata)
    return len(X)


def batch_online(data, srate, pipe: Pipeline, bundle, extractor, filters, window, hop) -> int:
    """The live path's own normalizers and model (``Pipeline.classify``, window by window), on all windows' features."""
    X, _ = recording_features(data, srate, extractor, filters, window, hop)
    pipe.classify(X)
    return len(X)


def streaming(data, info, bundle, window, hop, chunk_ms) -> tuple[float, int, np.ndarray, dict]:
    """One fresh Pipeline over the recording, as ``replay_session`` drives it; chunks are built untimed."""
    step = max(1, round(chunk_ms / 1000 * info.srate))
    chunks = list(chunks_of(data, info.srate, step, len(data) / info.srate))
    pipe = Pipeline(info, bundle, "bench", "1", window, hop)
    per_window, n_windows = [], 0
    t0 = time.perf_counter()
    for c in chunks:
        t = time.perf_counter()
        k = len(pipe.process(c))
        if k:
            per_window.append((time.perf_counter() - t) / k)
            n_windows += k
    wall = time.perf_counter() - t0
    pipe.close()
    return wall, n_windows, np.asarray(per_window), pipe.summary()["stage_ms"]


def offline(args) -> None:
    gen = SyntheticEEG("seed62", seed=args.seed)
    info, srate = gen.info, gen.info.srate
    data, _ = gen.generate(round(args.seconds * srate))
    bundle = default_bundle_for(info)
    window, hop = bundle.window, args.hop or bundle.hop
    extractor = registry.load_plugin("features", bundle.features)
    filters = FilterSpec.from_dict(bundle.filters)
    seconds = len(data) / srate

    # Warm-up: FFT plans, the first torch call, allocator pools.
    warm = data[: round(20 * srate)]
    feature_floor(warm, srate, extractor, filters, window, hop)
    batch_offline(warm, srate, bundle.build_model(), bundle, extractor, filters, window, hop)
    batch_online(warm, srate, Pipeline(info, bundle, "warm", "1", window, hop), bundle, extractor, filters, window, hop)

    rows = []  # (label, windows, wall s, per-window seconds for p50/p99)
    floors = [feature_floor(data, srate, extractor, filters, window, hop) for _ in range(args.repeats)]
    floor_wall = float(np.median([w for w, _ in floors]))
    rows.append(("Welch DE alone (floor)", len(floors[0][1]), floor_wall, np.concatenate([p for _, p in floors])))
    for label, run, setup in (
        ("batch, offline norm", batch_offline, bundle.build_model),
        ("batch, online norm", batch_online, lambda: Pipeline(info, bundle, "bench", "1", window, hop)),
    ):
        times, n = [], 0
        for _ in range(args.repeats):
            state = setup()  # a fresh model or pipeline each run, built untimed
            t = time.perf_counter()
            n = run(data, srate, state, bundle, extractor, filters, window, hop)
            times.append(time.perf_counter() - t)
        rows.append((label, n, float(np.median(times)), np.asarray(times) / n))
    stages = []
    for ms in args.chunks:
        wall, n, per_window, stage_ms = streaming(data, info, bundle, window, hop, ms)
        rows.append((f"stream, {ms:g}-ms chunks", n, wall, per_window))
        stages.append((f"{ms:g}-ms chunks", stage_ms))

    print(f"\nOffline throughput, 62 ch @ {srate:g} Hz, {seconds:g} s of EEG, {window:g} s windows, {hop:g} s hop, "
          f"model {bundle.name!r}; one core (torch.set_num_threads(1), BLAS 1 thread)\n")
    print(f"{'path':<24} {'windows':>7} {'EEG s':>7} {'wall s':>8} {'x real time':>12} {'target':>8} "
          f"{'p50 us/win':>11} {'p99 us/win':>11} {'wall/floor':>11}")
    targets = {"batch": 10_000, "stream": 1_000}
    for label, n, wall, per_window in rows:
        p50, p99 = percentiles_us(per_window)
        target = next((f">={v:,}" for k, v in targets.items() if label.startswith(k)), "")
        print(f"{label:<24} {n:>7} {seconds:>7g} {wall:>8.3f} {seconds / wall:>12,.0f} {target:>8} "
              f"{p50:>11.1f} {p99:>11.1f} {wall / floor_wall:>11.2f}")
    print(f"\nwall s: median of {args.repeats} runs for the floor and batch rows, one run for streaming rows.")
    print(f"us/win: floor, per window of each {BLOCK}-window block; batch, whole run / windows over the {args.repeats} "
          "runs;\n        streaming, each process() call that returned windows / its windows.")
    print("\nPer-stage time inside the streaming pipeline (ms per chunk, last 4096 chunks):")
    for label, stage_ms in stages:
        print(f"  {label}: " + "; ".join(f"{s} p50 {v['p50']:.3f} p99 {v['p99']:.3f}" for s, v in stage_ms.items()))

    # DESIGN.md's floor, re-measured: one 62 ch x 1000 Hz 1-s window (≈ 1 ms there), and one at this rate.
    print("\nReference floor, Welch DE of one window (median of 200 calls):")
    for rate, design in ((1000.0, "DESIGN.md ≈ 1 ms"), (srate, "")):
        w = SyntheticEEG("seed62", srate=rate, seed=args.seed).generate(round(rate))[0].T[None].copy()
        extractor.compute(w, rate)
        t = []
        for _ in range(200):
            s = time.perf_counter()
            extractor.compute(w, rate)
            t.append(time.perf_counter() - s)
        print(f"  62 ch x {rate:g} Hz: {np.median(t) * 1e3:.3f} ms  {design}")


# ---------------------------------------------------------------- concurrency
def stream_data(k: int, seed: int, srate: float = 1000.0, seconds: float = 10.0):
    gen = SyntheticEEG("seed62", participant=k + 1, srate=srate, seed=seed)
    return gen.info, gen.generate(round(seconds * srate))[0]


def concurrency(args) -> None:
    srate, n_streams, warmup = 1000.0, args.streams, 2.0
    step = round(0.010 * srate)
    streams = [stream_data(k, args.seed, srate) for k in range(n_streams)]
    bundle = default_bundle_for(streams[0][0])
    n_ticks = len(range(0, round(args.concurrency_seconds * srate) - step + 1, step))
    skip = round(warmup * srate / step)  # the first windows carry the first torch call and allocations

    def drive(pipes, data):
        times = np.zeros((len(pipes), n_ticks))
        feeds = [chunks_of(d, srate, step, args.concurrency_seconds) for d in data]
        for tick in range(n_ticks):
            for k, (pipe, feed) in enumerate(zip(pipes, feeds)):
                c = next(feed)
                t = time.perf_counter()
                pipe.process(c)
                times[k, tick] = time.perf_counter() - t
        return times[:, skip:]

    alone = drive([Pipeline(streams[0][0], bundle, "p1", "1")], [streams[0][1]])[0]
    pipes = [Pipeline(info, bundle, f"p{k + 1}", "1") for k, (info, _) in enumerate(streams)]
    times = drive(pipes, [d for _, d in streams])
    rounds = times.sum(axis=0)

    a50, a99 = np.median(alone) * 1e3, np.percentile(alone, 99) * 1e3
    print(f"\n{n_streams} pipelines round-robin in one thread, 62 ch @ {srate:g} Hz each, 10-ms chunks, "
          f"{args.concurrency_seconds:g} s of stream time (first {warmup:g} s dropped); model {bundle.name!r}\n")
    print(f"{'stream':<10} {'chunks':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50/alone':>10} {'p99/alone':>10} "
          f"{'p99<=10ms':>10}")
    print(f"{'alone':<10} {len(alone):>7} {a50:>8.3f} {a99:>8.3f} {alone.max() * 1e3:>8.3f} {1:>10.2f} {1:>10.2f} "
          f"{'yes' if a99 <= 10 else 'NO':>10}")
    for k, t in enumerate(times):
        p50, p99 = np.median(t) * 1e3, np.percentile(t, 99) * 1e3
        print(f"{f'stream {k + 1}':<10} {len(t):>7} {p50:>8.3f} {p99:>8.3f} {t.max() * 1e3:>8.3f} {p50 / a50:>10.2f} "
              f"{p99 / a99:>10.2f} {'yes' if p99 <= 10 else 'NO':>10}")
    print(f"\nOne round (a 10-ms chunk of every stream, processed one after another): p50 "
          f"{np.median(rounds) * 1e3:.3f} ms, p99 {np.percentile(rounds, 99) * 1e3:.3f} ms, max {rounds.max() * 1e3:.3f} ms;")
    print(f"fed in real time the thread is busy {rounds.sum() / (rounds.size * step / srate):.0%} of the time, and a "
          "chunk of the last stream waits for the others: all streams start at sample 0, so their windows fall due "
          "in the same round (the worst case).")


# ---------------------------------------------------------------- memory
def memory(args) -> None:
    """In a fresh process, so the other parts' arrays neither inflate the start RSS nor leave free memory that hides growth."""
    child = mp.get_context("spawn").Process(target=memory_run, args=(args,))
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"throughput benchmark: the memory run failed (exit code {child.exitcode})")


def memory_run(args) -> None:
    torch.set_num_threads(1)
    srate, step = 1000.0, round(args.memory_chunk_ms / 1000 * 1000.0)
    info, data = stream_data(0, args.seed, srate)
    pipe = Pipeline(info, default_bundle_for(info), "mem", "1")
    minute = round(60 * srate)
    gc.collect()
    start_rss = rss_bytes()
    samples = [(0.0, start_rss)]  # (stream seconds, RSS bytes)
    progress = Progress(max(1, round(args.memory_seconds / 60)), "memory")
    t0, n = time.perf_counter(), 0
    for c in chunks_of(data, srate, step, args.memory_seconds):
        pipe.process(c)
        n += len(c)
        if n % minute < step:
            samples.append((n / srate, rss_bytes()))
            progress.update(note=f"RSS {samples[-1][1] / 1e6:.2f} MB")
    wall = time.perf_counter() - t0
    if samples[-1][0] != n / srate:
        samples.append((n / srate, rss_bytes()))
    s = pipe.summary()
    pipe.close()

    mb = 1e6
    warm = samples[1][1] if len(samples) > 2 else samples[0][1]  # RSS after the first minute
    growth = samples[-1][1] - warm
    print(f"\nMemory, one Pipeline, 62 ch @ {srate:g} Hz, {args.memory_chunk_ms:g}-ms chunks, {n / srate:g} s of stream "
          f"time in {wall:.1f} s wall ({n / srate / wall:.0f}x real time), {s['predictions']} predictions\n")
    print(f"{'stream min':>10} {'RSS MB':>10} {'vs 1 min':>10}")
    every = max(1, (len(samples) - 1) // 12)  # at most about a dozen rows
    for i, (t, r) in enumerate(samples):
        if i % every == 0 or i == len(samples) - 1:
            print(f"{t / 60:>10.1f} {r / mb:>10.2f} {(r - warm) / mb:>+10.3f}")
    print(f"\nstart RSS {start_rss / mb:.2f} MB, end RSS {samples[-1][1] / mb:.2f} MB, growth after the first minute "
          f"{growth / mb:+.3f} MB (max {(max(r for _, r in samples[1:]) - warm) / mb:+.3f}); target <= 5 MB: "
          f"{'yes' if growth <= 5 * mb else 'NO'}; ring buffer overwrote {s['ring_overwritten']} samples")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="length of the offline recording, s of EEG")
    ap.add_argument("--hop", type=float, default=None, help="offline window hop, s (default: the model's, 0.1)")
    ap.add_argument("--repeats", type=int, default=5, help="runs of the floor and batch rows (median reported)")
    ap.add_argument("--chunks", default="10,100", help="chunk sizes of the streaming rows, ms")
    ap.add_argument("--streams", type=int, default=8, help="concurrent pipelines")
    ap.add_argument("--concurrency-seconds", type=float, default=60.0, help="stream time each concurrent stream runs")
    ap.add_argument("--memory-seconds", type=float, default=3600.0, help="stream time of the memory run")
    ap.add_argument("--memory-chunk-ms", type=float, default=10.0)
    ap.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(PARTS):
        ap.error(f"--skip: unknown part(s) {sorted(skip - set(PARTS))}; parts are {', '.join(PARTS)}")
    args.chunks = [float(v) for v in args.chunks.split(",")]
    torch.set_num_threads(1)
    for part, run in (("offline", offline), ("concurrency", concurrency), ("memory", memory)):
        if part not in skip:
            run(args)


if __name__ == "__main__":
    main()
