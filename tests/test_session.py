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
