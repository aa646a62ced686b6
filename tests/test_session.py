"""One live session, every place that states the warm-up: prediction, JSONL log, status stream, control
acknowledgement and viewer must agree at every window."""

import dataclasses
import json
import time

import numpy as np
import pylsl

from bci_stream.apps.viewer import ViewState
from bci_stream.bundle import default_bundle_for
from bci_stream.control import StratumControl, parse_fields
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.outlets import MarkerOutlet
from bci_stream.session import LiveSession, Outputs, SessionOptions, default_stratum
from bci_stream.stream import Chunk
from conftest import Keep


def test_default_stratum_is_stated_once():
    assert default_stratum("P07", None) == ("P07", "1")
    assert default_stratum("P07", "3") == ("P07", "3")
    anonymous, stamp = default_stratum(None, None)
    assert anonymous == "anonymous" and stamp[:2] == "20" and "T" in stamp  # every stranger gets a fresh session


def test_warming_up_agrees_everywhere_at_every_window(uid, tmp_path):
    gen = SyntheticEEG("seed62", seed=5)
    bundle = default_bundle_for(gen.info)
    # A short input prior (1 s = 10 windows at the 0.1-s hop), so warm-up ends inside the test; the hidden
    # layers keep their 600-s prior and so stay young throughout: a rule that asked them would disagree.
    bundle = dataclasses.replace(bundle, normalization={**bundle.normalization, "prior_seconds": 1.0})
    keep, view = Keep(), ViewState(gen.info, bundle.class_names)
    log = tmp_path / "p.jsonl"
    live = LiveSession(gen.info, bundle, SessionOptions("P1", "1"),
                       Outputs(prefix=uid, log=str(log), control=f"{uid}-control"), sinks=[keep, view])
    control = next(h for h in live.hooks if isinstance(h, StratumControl))
    control.look_every = 0.05
    markers = MarkerOutlet(f"{uid}-control", f"{uid}-control")
    status = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{uid}-status", timeout=20)[0])
    status.open_stream(timeout=10)
    hop = round(bundle.hop * gen.info.srate)
    data, _ = gen.generate(hop * 140)
    t0 = pylsl.local_clock()
    viewer_seen, events = [], []
    switches = {30: "participant=P2", 60: "participant=P1", 100: "session=2"}  # at these chunks
    try:
        deadline = time.monotonic() + 20
        while control.inlet is None or not markers.outlet.have_consumers():
            assert time.monotonic() < deadline, "the control inlet never connected"
            control()
            time.sleep(0.05)
        for k in range(140):
            if k in switches:
                markers.push(switches[k], pylsl.local_clock())
                time.sleep(0.05)  # the marker reaches the control inlet before this chunk's hooks run
            ts = t0 + (np.arange(k * hop, (k + 1) * hop) + 1) / gen.info.srate
            live.run([Chunk(data[k * hop : (k + 1) * hop], ts)])
            if len(keep.predictions) > len(viewer_seen):
                viewer_seen.append(view.snapshot()["warming_up"])
        time.sleep(0.5)
        while (sample := status.pull_sample(timeout=0.2))[0] is not None:
            events.append((sample[1], parse_fields(sample[0][0])))
    finally:
        live.close()
        markers.outlet = None
        status.close_stream()

    preds = keep.predictions
    assert len(preds) >= 120
    warm = [p.warming_up for p in preds]
    assert warm[0] and not warm[20] and True in warm[35:] and False in warm[35:], warm  # it changes both ways
    # JSONL and viewer: one entry per window.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["warming_up"] for line in lines] == warm
    assert viewer_seen == warm
    # Status stream: the state restated whenever it changes, stamped with its window's time.
    stated = sorted((t, f) for t, f in events if f["event"] == "stratum")
    times = [t for t, _ in stated]
    for p in preds:
        last = stated[np.searchsorted(times, p.timestamp, side="right") - 1][1]
        assert (last["participant"], last["session"], last["warming_up"]) == (p.participant, p.session,
                                                                              str(int(p.warming_up)))
    # Control acknowledgements: the warm-up of the new stratum, as its first window then states it.
    acks = [f for _, f in events if f["event"] == "switch"]
    assert len(acks) == 3
    for ack in acks:
        first = next(p for i, p in enumerate(preds) if (p.participant, p.session) == (ack["participant"], ack["session"])
                     and i > 0 and (preds[i - 1].participant, preds[i - 1].session) != (p.participant, p.session))
        assert ack["warming_up"] == str(int(first.warming_up))
    assert acks[1]["warming_up"] == "0"  # back to P1/1, whose inputs had warmed up while its hidden layers had not


def test_fresh_starts_the_stratum_empty_and_saving_overwrites_what_was_saved(tmp_path):
    gen = SyntheticEEG("seed62", seed=6)
    bundle = default_bundle_for(gen.info)
    data, _ = gen.generate(round(5 * gen.info.srate))
    ts = (np.arange(len(data)) + 1) / gen.info.srate
    options = SessionOptions("P5", "2", state_dir=tmp_path)

    def decode(fresh):
        live = LiveSession(gen.info, bundle, dataclasses.replace(options, fresh=fresh))
        resumed = [live.pipeline.strata.stats(which=i).count for i in range(4)]  # the input's and 3 hidden blocks'
        live.run([Chunk(data, ts)])
        live.close()
        return resumed

    assert decode(fresh=False) == [0, 0, 0, 0]
    assert decode(fresh=False) == [41, 41, 41, 41]  # 5 s: 41 windows of 1 s at the 0.1-s hop, resumed
    assert decode(fresh=True) == [0, 0, 0, 0]  # forgotten, every block alike...
    assert decode(fresh=False) == [41, 41, 41, 41]  # ...and what --fresh saved replaced the 82 windows before


#: A reliability curve of 2-s bins with values no real bundle has, so a label can only carry them by this lookup.
CURVE = {"bin_seconds": 2.0, "hop": 0.1, "participants": ["x"],
         "first": [{"t_start": 0.0, "accuracy": 0.41, "n_windows": 9}, {"t_start": 2.0, "accuracy": 0.62, "n_windows": 9},
                   {"t_start": 4.0, "accuracy": 0.83, "n_windows": 9}],
         "returning": [{"t_start": 0.0, "accuracy": 0.55, "n_windows": 9}, {"t_start": 2.0, "accuracy": 0.97, "n_windows": 9}]}


def test_reliability_follows_the_stratum_s_age_and_warm_up_prior_everywhere(uid, tmp_path):
    """Each label's reliability is the curve's value at its stratum's age (windows learned from x hop), from the
    first-session curve while the input statistics lean on the population, the returning one while they lean on
    the person's earlier sessions; predictions, JSON lines and the status stream agree."""
    gen = SyntheticEEG("seed62", seed=8)
    shipped = default_bundle_for(gen.info)
    bundle = dataclasses.replace(shipped, report={**shipped.report, "reliability": CURVE})
    plain = dataclasses.replace(shipped, report={k: v for k, v in shipped.report.items() if k != "reliability"})
    hop = round(bundle.hop * gen.info.srate)
    data, _ = gen.generate(hop * 60)  # 6 s: 51 windows of 1 s at the 0.1-s hop
    status = None

    def decode(participant, session, prefix, b=bundle, storm=False):
        nonlocal status
        keep, log = Keep(), tmp_path / f"{prefix}.jsonl"
        live = LiveSession(gen.info, b, SessionOptions(participant, session, state_dir=tmp_path / "state"),
                           Outputs(prefix=prefix, log=str(log)), sinks=[keep])
        status = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{prefix}-status", timeout=20)[0])
        status.open_stream(timeout=10)
        x = data.copy()
        if storm:  # 2 s of 500 uV on every channel: artifact windows, neither labelled by class nor learned from
            x[hop * 20 : hop * 40] = np.random.default_rng(0).normal(0, 500, (hop * 20, x.shape[1]))
        t0 = pylsl.local_clock()
        try:
            for k in range(60):
                ts = t0 + (np.arange(k * hop, (k + 1) * hop) + 1) / gen.info.srate
                live.run([Chunk(x[k * hop : (k + 1) * hop], ts)])
            time.sleep(0.5)
            events = []
            while (sample := status.pull_sample(timeout=0.2))[0] is not None:
                events.append((sample[1], parse_fields(sample[0][0])))
        finally:
            live.close()
            status.close_stream()
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        return keep.predictions, rows, sorted((t, f) for t, f in events if f["event"] == "stratum")

    def expected(preds, curve, before=0):
        """By hand: the n-th clean window leaves n (+ ``before`` resumed) windows learned from; bins of 20, each
        (start, end]: windows 1-20 read the first."""
        out, n = [], before
        for p in preds:
            if p.artifact:
                out.append((None, None))
                continue
            n += 1
            out.append((curve[min((n - 1) // 20, len(curve) - 1)], round(n * 0.1, 1)))
        return out

    def agree(preds, rows, stated):
        got = [(p.reliability, None if p.stratum_s is None else round(p.stratum_s, 1)) for p in preds]
        assert [(r.get("reliability"), r.get("stratum_s")) for r in rows] == got
        times = [t for t, _ in stated]
        for p in preds:  # as stated at each label's time: restated whenever it changes
            last = stated[np.searchsorted(times, p.timestamp, side="right") - 1][1]
            assert last.get("reliability") == (None if p.reliability is None else str(p.reliability))
        for t, f in stated:  # each statement states its own window's age
            p = next(p for p in preds if p.timestamp == t)
            assert f.get("stratum_s") == (None if p.stratum_s is None else str(round(p.stratum_s, 1)))
        return got

    preds, rows, stated = decode("P1", "1", uid)  # a new person: the population prior
    assert len(preds) == 51
    assert agree(preds, rows, stated) == expected(preds, [0.41, 0.62, 0.83])
    preds, rows, stated = decode("P1", "2", f"{uid}b")  # returning: P1/1's statistics are the prior
    assert agree(preds, rows, stated) == expected(preds, [0.55, 0.97])
    preds, rows, stated = decode("P2", "1", f"{uid}c", storm=True)  # someone new, with an artifact episode
    got = agree(preds, rows, stated)
    assert got == expected(preds, [0.41, 0.62, 0.83]) and got.count((None, None)) >= 15
    assert [f.get("reliability") for _, f in stated].count(None) >= 1  # stated during the storm, without it
    preds, rows, stated = decode("P1", "1", f"{uid}d")  # resumed: 51 windows old, P1/2's statistics its prior now
    assert agree(preds, rows, stated) == expected(preds, [0.55, 0.97], before=51)
    preds, rows, stated = decode("P3", "1", f"{uid}e", b=plain)  # no curve in the bundle: nothing said
    assert {p.reliability for p in preds} == {p.stratum_s for p in preds} == {None}
    assert not any("reliability" in r or "stratum_s" in r for r in rows)
    assert stated and not any("reliability" in f or "stratum_s" in f for _, f in stated)


def test_returning_is_false_without_statistics_per_stratum():
    from bci_stream.stratified import Strata

    assert Strata("P1", "2").returning() is False
