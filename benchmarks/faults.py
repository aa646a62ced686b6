"""Faults of a live stream and how `bci-stream run` comes through them, measured through real LSL processes.

As in a lab: an EEG outlet in a process of its own (the seed62 generator's EEG, pushed in real
time in 50-ms blocks, sample i stamped t0 + (i + 1) / srate on the LSL clock), `bci-stream run`
decoding it, and inlets in this process on the run's labels and status streams (and, for
restarts, on the EEG itself, for the last sample the killed outlet delivered). Faults:

- the outlet killed and, 5 s later, started again under the same or a new source_id;
- timestamps jumping +5 s and -1 s;
- 10 s of 500 uV Gaussian noise on all channels, and one channel NaN, flat or railed throughout,
  each against a run of the same bytes without it (runs that must see the same bytes wait for the
  run's inlet before their first sample, so labels line up by sample index);
- the run SIGKILLed after 60 s of checkpoints every 10 s, then started again on the saved state;
- the run sent SIGTERM while its stream is stalled.

A window spans a break when its first sample is before the first sample after the break and its
last is not. Restarts: the run misses what the new outlet sent before the run's inlet found it, so
"lost" counts samples from the old outlet's last to the first sample of the first new label's window.
The old outlet's last samples are seen by this script's own inlet, not by the run's: SIGKILL can cut the last
block in flight (BLOCK samples) to one inlet and not the other, so reported and measured agree to one block.

    python benchmarks/faults.py [--repeats 5] [--quick]

Progress goes to stderr, the table (fault | figure | target | met?) to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl

from bci_stream.control import parse_fields

BIN = Path(sys.executable).parent
SRATE = 200.0
BLOCK = 10  # samples the outlets push at a time (50 ms)
STORM_UV = 500.0
BAD = {"nan": "NaN", "flat": "flat", "railed": "railed"}

#: The EEG outlet. Options (JSON): seconds of generated data (looped), storm [from, to] s, bad channel kind,
#: jumps [[at s, by s], ...], hold: "before" (read a line on stdin before the outlet exists: an outage of exact
#: length) or "after" (wait for a consumer and a line on stdin before the first sample). Prints ``ready`` once the
#: outlet exists, ``first T`` with its first sample's timestamp, ``jump T CLOCK`` with the first timestamp after a
#: jump and the LSL clock just before it was pushed.
OUTLET = r"""
import json, sys, time
import numpy as np, pylsl
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.outlets import EEGOutlet
from bci_stream.stream import Chunk, StreamInfo

o = json.loads(sys.argv[1])
gen = SyntheticEEG("seed62", participant="77", session="1", seed=5)
srate, names = gen.info.srate, list(gen.info.channel_names)
data, _ = gen.generate(round(o["seconds"] * srate))
if o.get("storm"):
    a, b = (round(s * srate) for s in o["storm"])
    data[a:b] += np.random.default_rng(1).normal(0.0, o["storm_uv"], (b - a, len(names))).astype(np.float32)
if o.get("bad"):
    data[:, names.index(o["channel"])] = {"nan": np.nan, "flat": 0.0, "railed": 1e6}[o["bad"]]
jumps = {round(at * srate): by for at, by in o.get("jumps", [])}
if o.get("hold") == "before":
    print("prepared", flush=True)
    sys.stdin.readline()
out = EEGOutlet(StreamInfo(o["name"], names, srate, gen.info.unit, source_id=o["source_id"]))
print("ready", flush=True)
if o.get("hold") == "after":
    out.outlet.wait_for_consumers(300)
    sys.stdin.readline()
t0, sent, offset, n = pylsl.local_clock(), 0, 0.0, o["block"]
print("first", t0 + 1 / srate, flush=True)
while True:
    if int((pylsl.local_clock() - t0) * srate) - sent < n:
        time.sleep(0.005)
        continue
    if sent in jumps:
        offset += jumps[sent]
        print("jump", t0 + (sent + 1) / srate + offset, pylsl.local_clock(), flush=True)
    idx = np.arange(sent, sent + n)
    out.push(Chunk(data[idx % len(data)], t0 + (idx + 1) / srate + offset))
    sent += n
"""

PROCS: list[subprocess.Popen] = []
LOGS = Path(tempfile.mkdtemp(prefix="bci-faults-"))
START = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - START:6.1f} s] {text}", file=sys.stderr, flush=True)


def uid() -> str:
    return f"f{uuid.uuid4().hex[:10]}"


def spawn(args: list, tag: str, **kw) -> subprocess.Popen:
    """A child process that is ended on any exit of this one; its stderr goes to a log read on failure."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([str(a) for a in args], stderr=open(LOGS / f"{tag}.err", "w"), text=True, env=env, **kw)
    p.tag = tag
    PROCS.append(p)
    return p


def log_tail(p: subprocess.Popen, lines: int = 8) -> str:
    return "\n".join((LOGS / f"{p.tag}.err").read_text().splitlines()[-lines:])


def end(p: subprocess.Popen, timeout: float = 20.0) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Outlet:
    """One EEG outlet process and the lines it printed."""

    def __init__(self, name: str, source_id: str, seconds: float = 30.0, **options):
        opts = {"name": name, "source_id": source_id, "seconds": seconds, "storm_uv": STORM_UV, "channel": "CZ",
                "block": BLOCK, **options}
        self.proc = spawn([sys.executable, "-c", OUTLET, json.dumps(opts)], f"outlet-{source_id}",
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("prepared" if options.get("hold") == "before" else "ready", 60)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line.split())

    def expect(self, word: str, timeout: float = 30.0) -> list[float]:
        """The numbers of the next line that starts with ``word``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"outlet printed no {word!r} within {timeout:g} s:\n{log_tail(self.proc)}") from None
            if line[0] == word:
                return [float(x) for x in line[1:]]

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def run(name: str, prefix: str, *args) -> subprocess.Popen:
    return spawn([BIN / "bci-stream", "run", "--source", f"lsl:name={name}", "--name", prefix, "-q", *args],
                 f"run-{prefix}", stdout=subprocess.DEVNULL)


def _inlet(name: str, timeout: float = 90.0) -> pylsl.StreamInlet:
    found = pylsl.resolve_byprop("name", name, timeout=timeout)
    if not found:
        raise RuntimeError(f"no LSL stream {name!r} within {timeout:g} s")
    inlet = pylsl.StreamInlet(found[0], max_buflen=360)
    inlet.open_stream(timeout=10)
    return inlet


class Watch:
    """Labels and status events of one `bci-stream run`, each with its arrival on the LSL clock; timestamps
    as the run sent them (no clock processing: the same host)."""

    def __init__(self, prefix: str, run_proc: subprocess.Popen):
        self.run = run_proc
        self.labels: list[tuple[str, float, float]] = []  # label, timestamp, arrival
        self.events: list[tuple[dict, float]] = []  # fields, arrival
        label_inlet, status_inlet = _inlet(f"{prefix}-labels"), _inlet(f"{prefix}-status")
        meta = label_inlet.info().desc().child("bci_stream")
        self.window, self.hop = float(meta.child_value("window")), float(meta.child_value("hop"))
        probabilities = pylsl.resolve_byprop("name", f"{prefix}-probabilities", timeout=30)[0]
        ch = pylsl.StreamInlet(probabilities).info().desc().child("channels").child("channel")
        self.classes = set()
        while not ch.empty():
            self.classes.add(ch.child_value("label"))
            ch = ch.next_sibling("channel")
        self._open = True
        self._threads = [threading.Thread(target=self._pull, args=(label_inlet, self.labels, lambda s, t, a: (s, t, a)),
                                          daemon=True),
                         threading.Thread(target=self._pull, args=(status_inlet, self.events,
                                                                   lambda s, t, a: (parse_fields(s), a)), daemon=True)]
        for t in self._threads:
            t.start()

    def _pull(self, inlet, into, item) -> None:
        while self._open:
            sample, ts = inlet.pull_sample(timeout=0.1)
            if sample is not None:
                into.append(item(sample[0], ts, pylsl.local_clock()))
        inlet.close_stream()

    def wait(self, done, timeout: float) -> bool:
        """Whether ``done()`` came true within ``timeout`` s (False at once if the run has ended)."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or self.run.poll() is not None:
                return done()
            time.sleep(0.01)
        return True

    def after(self, name: str, arrival: float) -> dict | None:
        return next((f for f, a in self.events if f["event"] == name and a > arrival), None)

    def close(self) -> None:
        self._open = False
        for t in self._threads:
            t.join()


class Tail:
    """The newest timestamp an EEG outlet delivered, from an inlet of our own."""

    def __init__(self, source_id: str, not_uid: str = ""):
        deadline = time.monotonic() + 20
        found = []
        while not found and time.monotonic() < deadline:
            found = [s for s in pylsl.resolve_byprop("source_id", source_id, timeout=1.0) if s.uid() != not_uid]
        if not found:
            raise RuntimeError(f"EEG outlet {source_id!r} not found")
        self.uid, self.last = found[0].uid(), None
        # Without recovery, liblsl may report the outlet lost before handing over its last block.
        self._inlet = pylsl.StreamInlet(found[0], max_buflen=60)
        self._inlet.open_stream(timeout=10)
        self._open = True
        self._thread = threading.Thread(target=self._pull, daemon=True)
        self._thread.start()

    def _pull(self) -> None:
        while self._open:
            _, ts = self._inlet.pull_chunk(timeout=0.1, max_samples=4096)
            if ts:
                self.last = ts[-1]
        self._inlet.close_stream()

    def close(self) -> float | None:
        self._open = False
        self._thread.join()
        return self.last


def spanning(stamps, first: float, window: float) -> int:
    """Labels whose window starts before ``first`` (the first sample after a break) and ends at or after it."""
    reach = window - 1.5 / SRATE  # from a window's last sample back to just after its first
    return sum(first <= t < first + reach for t in stamps)


def cadence_gaps(stamps, hop: float) -> int:
    """Labels missing from a run of labels that should come every ``hop`` s."""
    return int(sum(max(0, round(d / hop) - 1) for d in np.diff(stamps)))


# ---------------------------------------------------------------- the faults


def restarts(new_id: bool, repeats: int, outage: float) -> dict:
    """One run; its outlet killed and started again ``repeats`` times, ``outage`` s later."""
    name = uid()
    ids = iter(f"{name}-src{k}" if new_id else f"{name}-src" for k in range(repeats + 1))
    source_id = next(ids)
    outlet = Outlet(name, source_id)
    firsts = [outlet.expect("first")[0]]
    proc = run(name, f"{name}-out", "--no-state")
    watch = Watch(f"{name}-out", proc)
    tail = Tail(source_id)
    out = {"recovery": [], "reported": [], "lost": [], "not_sent": [], "events": 0}
    try:
        for k in range(repeats):
            if not watch.wait(lambda: any(t >= firsts[-1] + 3 for _, t, _ in watch.labels), 60):
                say(f"  no labels 3 s into the outlet's run {k}; the run's log:\n{log_tail(proc)}")
                out["recovery"].append(float("inf"))
                break
            outlet.kill()
            killed = pylsl.local_clock()
            source_id = next(ids)
            outlet = Outlet(name, source_id, hold="before")
            time.sleep(max(0.0, killed + outage - pylsl.local_clock()))
            last_old = tail.close()
            outlet.go()
            first = outlet.expect("first")[0]
            firsts.append(first)
            tail = Tail(source_id, not_uid=tail.uid)
            back = watch.wait(lambda: any(t >= first for _, t, _ in watch.labels), 30)
            if not back:
                say(f"  restart {k + 1}/{repeats}: no label within 30 s of the new outlet's first sample")
                out["recovery"].append(float("inf"))
                break
            label_t, arrival = next((t, a) for _, t, a in watch.labels if t >= first)
            out["recovery"].append(arrival - first)
            watch.wait(lambda: watch.after("resumed", killed) or watch.after("gap", killed), 5)
            said = watch.after("resumed", killed) or watch.after("gap", killed)
            out["events"] += said is not None
            out["reported"].append(int(said["lost_samples"]) if said else 0)
            w0 = label_t - (watch.window - 1 / SRATE)  # the first sample of the first new label's window
            out["lost"].append(round((w0 - last_old) * SRATE) - 1)
            out["not_sent"].append(round((first - last_old) * SRATE) - 1)
            say(f"  restart {k + 1}/{repeats}: labels back {arrival - first:.2f} s after the first sample; "
                f"lost samples reported {out['reported'][-1]}, {out['lost'][-1]} by the first window "
                f"({out['not_sent'][-1]} never sent)")
        watch.wait(lambda: watch.labels and watch.labels[-1][1] >= firsts[-1] + 2, 10)
    finally:
        tail.close()
        outlet.kill()
        end(proc)
        watch.close()
    stamps = [t for _, t, _ in watch.labels]
    out["spanning"] = sum(spanning(stamps, f, watch.window) for f in firsts[1:])
    bounds = [*firsts, float("inf")]
    out["labels_lost"] = sum(cadence_gaps([t for t in stamps if a <= t < b], watch.hop)
                             for a, b in zip(bounds, bounds[1:]))
    return out


def jumps() -> dict:
    """Timestamps +5 s after 8 s of data and -1 s after 14 s."""
    name = uid()
    outlet = Outlet(name, f"{name}-src", hold="after", jumps=[[8, 5.0], [14, -1.0]])
    proc = run(name, f"{name}-out", "--no-state")
    watch = Watch(f"{name}-out", proc)
    try:
        outlet.go()
        (j5, pushed5), (j1, pushed1) = outlet.expect("jump"), outlet.expect("jump")
        watch.wait(lambda: any(a > pushed1 and t >= j1 + 3 for _, t, a in watch.labels), 20)
    finally:
        outlet.kill()
        end(proc)
        watch.close()
    labels = watch.labels
    before = [(t, a) for _, t, a in labels if a < pushed5]
    between = [(t, a) for _, t, a in labels if pushed5 <= a < pushed1]
    after = [(t, a) for _, t, a in labels if a >= pushed1]
    return {
        # After the -1 s jump, labels of the last second before it share timestamps with those after: only labels
        # that arrived after the jumped samples were pushed can span it.
        "spanning": (spanning([t for _, t, _ in labels], j5, watch.window)
                     + spanning([t for t, _ in after], j1, watch.window)),
        "offsets": [float(np.median([a - t for t, a in part])) if part else float("nan")
                    for part in (before, between, after)],
        "gaps": [float(f["gap_s"]) for f, _ in watch.events if f["event"] in ("gap", "resumed")],
    }


def sigterm_while_stalled(repeats: int, state: Path) -> dict:
    exits, saved = [], []
    for k in range(repeats):
        name = uid()
        outlet = Outlet(name, f"{name}-src")
        proc = run(name, f"{name}-out", "--state-dir", state, "--participant", name, "--session", "1",
                   "--log", LOGS / f"{name}.jsonl")
        watch = Watch(f"{name}-out", proc)
        try:
            if not watch.wait(lambda: len(watch.labels) >= 5, 60):
                raise RuntimeError(f"no labels from the run:\n{log_tail(proc)}")
            outlet.kill()
            killed = pylsl.local_clock()
            if not watch.wait(lambda: watch.after("stalled", killed), 10):
                say("  no stalled event within 10 s of the outlet's end")
            asked = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            said = None  # when its summary appeared: the decoding loop had ended and the state was saved
            while proc.poll() is None and time.monotonic() < asked + 30:
                if said is None and "done:" in (LOGS / f"{proc.tag}.err").read_text():
                    said = time.monotonic() - asked
                time.sleep(0.005)
            exits.append(time.monotonic() - asked if proc.poll() is not None else float("inf"))
        finally:
            outlet.kill()
            end(proc)
            watch.close()
        counts = _counts(state, f"{name}__1")
        ok = proc.returncode == 0 and len(counts) == 4 and counts == [classified(LOGS / f"{name}.jsonl", watch)] * 4
        saved.append(ok)
        say(f"  SIGTERM {k + 1}/{repeats}: exit {proc.returncode} {exits[-1]:.3f} s after the signal (its summary "
            f"line after {'-' if said is None else f'{said:.3f}'} s); "
            f"state saved with every classified window: {ok}")
    return {"exit": exits, "saved": saved}


def classified(log: Path, watch: Watch) -> int:
    """Windows a run classified (so folded into its statistics), from its JSON-lines log."""
    return sum(json.loads(line)["label"] in watch.classes for line in log.read_text().splitlines())


def _counts(state: Path, stratum: str) -> list[float]:
    """The windows folded into each statistic of ``stratum`` saved under ``state`` (input, then hidden layers)."""
    files = [*state.glob(f"*/{stratum}.json"), *state.glob(f"*/network/layer*/{stratum}.json")]
    return [json.loads(f.read_text())["count"] for f in files]


def same_bytes(seconds: float, storm: tuple[float, float], kill_after: float, state: Path) -> dict:
    """Runs of the same generated bytes at once, each from its first sample: healthy twice, with a storm, with
    a bad channel; and one SIGKILLed after ``kill_after`` s and started again on its saved state."""
    variants = {"healthy": {}, "healthy again": {}, "storm": {"storm": list(storm)},
                **{k: {"bad": k} for k in BAD}, "sigkill": {}}
    runs = {}
    try:
        for tag, opts in variants.items():
            name = uid()
            outlet = Outlet(name, f"{name}-src", seconds + 10, hold="after", **opts)
            args = (["--state-dir", state, "--participant", name, "--session", "1", "--checkpoint", "10"]
                    if tag == "sigkill" else ["--no-state", "--duration", seconds])
            proc = run(name, f"{name}-out", *args)
            runs[tag] = {"name": name, "outlet": outlet, "proc": proc}
        for tag, r in runs.items():
            r["watch"] = Watch(f"{r['name']}-out", r["proc"])
            r["outlet"].go()
            r["first"] = r["outlet"].expect("first")[0]
        say(f"  {len(runs)} runs decoding; {seconds:g} s of stream each")
        kill = runs["sigkill"]
        deadline = time.monotonic() + seconds + 120
        while any(r["proc"].poll() is None for tag, r in runs.items() if tag != "sigkill") or "killed" not in kill:
            if "killed" not in kill and pylsl.local_clock() >= kill["first"] + kill_after:
                kill["proc"].kill()
                kill["proc"].wait()
                kill["killed"] = True
                say(f"  SIGKILLed the checkpointing run {kill_after:g} s after its first sample")
            if time.monotonic() > deadline:
                raise RuntimeError("runs did not end by their --duration")
            time.sleep(0.05)
        time.sleep(0.5)
        stratum = f"{kill['name']}__1"
        saved = _counts(state, stratum)
        again = run(kill["name"], f"{kill['name']}-again", "--state-dir", state, "--participant", kill["name"],
                    "--session", "1", "--duration", 3, "--log", LOGS / "again.jsonl")
        again.wait(timeout=120)
        resumed = (again.returncode == 0 and len(saved) == 4 and len(set(saved)) == 1 and _counts(state, stratum)
                   == [saved[0] + classified(LOGS / "again.jsonl", kill["watch"])] * 4)
        for tag, r in runs.items():
            if tag != "sigkill" and r["proc"].returncode != 0:
                raise RuntimeError(f"run {tag} exited {r['proc'].returncode}:\n{log_tail(r['proc'])}")
    finally:
        for r in runs.values():
            r["outlet"].kill()
            end(r["proc"])
            if "watch" in r:
                r["watch"].close()
    window, hop = runs["healthy"]["watch"].window, runs["healthy"]["watch"].hop
    by_index = {tag: {round((t - r["first"]) * SRATE): (label, a) for label, t, a in r["watch"].labels}
                for tag, r in runs.items()}
    healthy = by_index["healthy"]
    end_s = seconds - 1  # runs end by --duration at a chunk boundary: the last windows of two runs may differ

    def differ(tag: str, lo: float, hi: float) -> tuple[int, int, int]:
        """Of the healthy run's labels whose window ends in [lo, hi) s: how many differ in run ``tag``, how many
        it has none for."""
        keys = [i for i in healthy if lo * SRATE <= i < hi * SRATE]
        other = by_index[tag]
        differing = sum(other.get(i, (None,))[0] != healthy[i][0] for i in keys)
        return differing, sum(i not in other for i in keys), len(keys)

    a, b = (round(s * SRATE) for s in storm)
    L = round(window * SRATE)
    touching = [i for i in by_index["storm"] if i >= a and i - L + 1 < b]
    classes = runs["storm"]["watch"].classes  # every run's: one model
    t0 = runs["storm"]["first"]
    storm_events = sorted({f["event"] for f, arrival in runs["storm"]["watch"].events
                           if f["event"] != "stratum" and t0 + storm[0] <= arrival < t0 + storm[1] + window + 1})
    n_kill = sum(label in classes for label, _, _ in kill["watch"].labels)
    last = round((kill["watch"].labels[-1][1] - kill["first"]) * SRATE)  # the last label's window ends there
    return {
        "again": differ("healthy again", 2, end_s),
        "storm": differ("storm", storm[1] + 30, min(storm[1] + 60, end_s)),
        "storm_confident": sum(by_index["storm"][i][0] in classes for i in touching),
        "storm_windows": len([i for i in healthy if i >= a and i - L + 1 < b]),
        "storm_events": storm_events,
        "bad": {k: differ(k, 2, end_s) for k in BAD},
        "decoded": n_kill, "saved": min(saved, default=0), "hop": hop, "resumed": resumed,
        "received": len(kill["watch"].labels), "windows": (last - (L - 1)) // round(hop * SRATE) + 1,
    }


# ---------------------------------------------------------------- the table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, help="restarts and SIGTERMs per row (default 5, 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="60-s runs (storm 10-20 s), SIGKILL after 25 s")
    args = ap.parse_args()
    if args.repeats is not None and args.repeats < 1:
        ap.error(f"--repeats: expected an integer >= 1, got {args.repeats}")
    repeats = args.repeats or (2 if args.quick else 5)
    seconds, storm, kill_after = (60.0, (10.0, 20.0), 25.0) if args.quick else (92.0, (20.0, 30.0), 60.0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load = os.getloadavg()[0]
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bci-faults-state-") as state:
            state = Path(state)
            for new_id in (False, True):
                kind = "new-source_id" if new_id else "same-source_id"
                say(f"{kind} restarts after a 5-s outage, {repeats}x")
                r = restarts(new_id, repeats, 5.0)
                rec = np.array(r["recovery"])
                same = sum(abs(a - b) <= BLOCK for a, b in zip(r["reported"], r["lost"]))
                rows += [
                    (f"{kind} restart, 5-s outage", f"labels back after the new first sample, median / max of "
                     f"{len(rec)}: {np.median(rec):.2f} / {rec.max():.2f} s", "<= 2 s", rec.max() <= 2),
                    ("", f"lost samples reported = lost in {same} of {len(rec)} ({r['events']} said); lost "
                     f"{_span(r['lost'])}, never sent {_span(r['not_sent'])}", f"reported = lost (to {BLOCK})", same == len(rec)),
                    ("", f"windows spanning the outage classified: {r['spanning']}", "0", r["spanning"] == 0),
                    ("", f"labels lost between the outages: {r['labels_lost']}", "0", r["labels_lost"] == 0),
                ]
            say("timestamp jumps +5 s and -1 s")
            j = jumps()
            expected = [0.0, -5.0, -4.0]
            rows += [
                ("timestamp jumps +5 s, -1 s", f"windows spanning a jump classified: {j['spanning']}", "0",
                 j["spanning"] == 0),
                ("", f"gaps said: {', '.join(f'{g:+.3f}' for g in j['gaps'])} s", "+5, -1",
                 len(j["gaps"]) == 2 and abs(j["gaps"][0] - 5) < 0.05 and abs(j["gaps"][1] + 1) < 0.05),
                ("", "arrival - label timestamp before / after +5 / after -1: "
                     + " / ".join(f"{o:+.3f}" for o in j["offsets"]) + " s", "the source's clock: 0, -5, -4",
                 all(abs(o - e) < 0.1 for o, e in zip(j["offsets"], expected))),
            ]
            say(f"SIGTERM while stalled, {repeats}x")
            s = sigterm_while_stalled(repeats, state)
            ex = np.array(s["exit"])
            rows += [("SIGTERM while stalled", f"exit after the signal, median / max of {len(ex)}: "
                      f"{np.median(ex):.3f} / {ex.max():.3f} s", "<= 1 s", ex.max() <= 1),
                     ("", f"state saved with every classified window: {sum(s['saved'])} of {len(ex)}", "all",
                      all(s["saved"]))]
            say(f"same bytes: healthy twice, storm {storm[0]:g}-{storm[1]:g} s, NaN/flat/railed CZ, "
                f"SIGKILL after {kill_after:g} s")
            c = same_bytes(seconds, storm, kill_after, state)
            d, missing, n = c["again"]
            rows.append(("same bytes twice (reference)", f"labels differing: {d} of {n} ({missing} missing)", "0",
                         d == 0))
            d, missing, n = c["storm"]
            rows += [
                ("10-s storm, 500 uV on all channels", f"labels differing 30-{min(60, seconds - 1 - storm[1]):g} s "
                 f"after it: {d} of {n} = {d / n:.1%} ({missing} missing)", "<= 2 %", d <= 0.02 * n),
                ("", f"class labels for windows touching the storm: {c['storm_confident']} of {c['storm_windows']}; "
                     f"status events: {', '.join(c['storm_events']) or 'none'}", "0", c["storm_confident"] == 0),
            ]
            for k, what in BAD.items():
                d, missing, n = c["bad"][k]
                rows.append((f"{what} CZ throughout", f"labels differing from 2 s on: {d} of {n} = {d / n:.1%} "
                             f"({missing} missing)", "<= 5 %", d <= 0.05 * n))
            lost_s = (c["decoded"] - c["saved"]) * c["hop"]
            rows += [
                (f"SIGKILL after {kill_after:g} s, --checkpoint 10", f"statistics lost: ({c['decoded']} windows "
                 f"decoded - {c['saved']:g} saved) x {c['hop']:g} s = {lost_s:.1f} s", "<= 10 s", lost_s <= 10),
                ("", f"next run resumes from the saved statistics: {'yes' if c['resumed'] else 'no'}", "yes",
                 c["resumed"]),
            ]
            if c["windows"] != c["received"]:
                say(f"  note: {c['received']} labels received of the killed run, {c['windows']} windows by the last "
                    "label's index")
    except BaseException:
        say(f"stopped; the processes' logs are in {LOGS}")
        raise
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
    took = time.monotonic() - START
    shutil.rmtree(LOGS)
    say(f"done in {took / 60:.1f} min")
    print(f"\nFaults of a live 62-ch 200-Hz LSL stream decoded by `bci-stream run` (seed62), {repeats} repeats; "
          f"{took / 60:.1f} min, 1-min load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end\n")
    table = [("fault", "figure", "target", "met?"), *((f, g, t, "yes" if m else "NO") for f, g, t, m in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for k, r in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def _span(values: list[int]) -> str:
    return f"{min(values)}-{max(values)}" if values else "-"


if __name__ == "__main__":
    main()
