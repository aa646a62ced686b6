import json
import logging
import time

import pylsl
import pytest

from bci_stream.bundle import default_bundle_for
from bci_stream.control import StratumControl, format_fields, parse_fields, parse_stratum
from bci_stream.devices.synthetic import SyntheticSource
from bci_stream.outlets import MarkerOutlet, PredictionOutlet
from bci_stream.pipeline import Pipeline
from conftest import Keep, cli


def test_fields_round_trip_and_bad_markers_say_why():
    fields = {"event": "rejected", "marker": "a=b;c", "reason": "100% wrong"}
    assert parse_fields(format_fields(fields)) == fields
    assert parse_stratum(" participant = P07 ; session = 2 ;") == {"participant": "P07", "session": "2"}
    assert parse_stratum("session=3") == {"session": "3"}
    for marker, why in [("hello", "not key=value"), ("", "empty marker"), ("participant=P1;participant=P2", "twice"),
                        ("subject=P1", "unknown key"), ("participant=", "empty value")]:
        with pytest.raises(ValueError, match=why):
            parse_stratum(marker)


def _status_inlet(name: str) -> pylsl.StreamInlet:
    found = pylsl.resolve_byprop("name", name, timeout=30)
    assert found, f"no status stream {name}"
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=10)
    return inlet


def test_markers_switch_the_normalizer_stratum_live(uid, caplog):
    src = SyntheticSource("seed62", realtime=False, seed=2)
    bundle = default_bundle_for(src.info)
    outlet, keep = PredictionOutlet(uid, bundle.class_names), Keep()
    pipe = Pipeline(src.info, bundle, "P01", "1", sinks=[outlet, keep])
    ctl = MarkerOutlet(f"{uid}-control", f"{uid}-control")
    control = StratumControl(f"{uid}-control", pipe.strata, outlet.report, look_every=0.05)
    status = _status_inlet(f"{uid}-status")
    chunks = src.chunks()
    acks = []

    def advance_until(done, what, limit=20.0):
        t0 = time.perf_counter()
        while not done():
            assert time.perf_counter() - t0 < limit, f"timed out waiting for {what}"
            pipe.run(chunks, duration=0.2, hooks=[control])
            while (sample := status.pull_sample(timeout=0.0))[0] is not None:
                acks.append(parse_fields(sample[0][0]))

    def send(marker, expect_event):
        n = len([a for a in acks if a["event"] == expect_event])
        ctl.push(marker, pylsl.local_clock())
        advance_until(lambda: len([a for a in acks if a["event"] == expect_event]) > n, f"ack of {marker!r}")
        return [a for a in acks if a["event"] == expect_event][-1]

    try:
        advance_until(lambda: ctl.outlet.have_consumers(), "the control inlet")
        p01 = ("P01", "1")
        advance_until(lambda: len(keep.predictions) > 40, "predictions")

        ack = send("participant=P07;session=2", "switch")
        assert ack == {"event": "switch", "participant": "P07", "session": "2", "warming_up": "1"}
        assert pipe.strata.key == ("P07", "2")
        first = pipe.strata.stats(p01).count  # P01/1's windows up to the switch
        assert first > 40
        n = len(keep.predictions)
        advance_until(lambda: len(keep.predictions) > n + 20, "predictions in the new stratum")
        assert {(p.participant, p.session) for p in keep.predictions[n:]} == {("P07", "2")}
        assert pipe.strata.stats(("P07", "2")).count >= 20
        assert pipe.strata.stats(p01).count == first  # the old stratum no longer moves

        with caplog.at_level(logging.WARNING, logger="bci_stream.control"):
            ack = send("particpant=P08", "rejected")
        assert ack["marker"] == "particpant=P08" and "unknown key" in ack["reason"]
        assert any(f"{uid}-control" in r.getMessage() and "'particpant=P08'" in r.getMessage() for r in caplog.records)
        assert pipe.strata.key == ("P07", "2")

        ack = send("session=3", "switch")
        assert pipe.strata.key == ("P07", "3") and ack["participant"] == "P07"
        n = len(keep.predictions)
        ack = send("participant=P01;session=1", "switch")  # back: its statistics resume where they were
        assert pipe.strata.stats(p01).count >= first
        advance_until(lambda: any((p.participant, p.session) == p01 for p in keep.predictions[n:]), "a P01/1 label")
        back = next(p for p in keep.predictions[n:] if (p.participant, p.session) == p01)
        assert ack["warming_up"] == str(int(back.warming_up))  # as its first label after the switch says
        advance_until(lambda: pipe.strata.stats(p01).count > first + 5, "P01/1 to grow again")
        assert control.n_switches == 3 and control.n_rejected == 1
        stated = [(a["participant"], a["session"]) for a in acks if a["event"] == "stratum"]
        assert stated[0] == ("P01", "1") and ("P07", "2") in stated and stated[-1] == ("P01", "1")
    finally:
        src.close()
        ctl.close()
        pipe.close()


def test_bci_stream_run_switches_on_markers_and_acknowledges(uid, tmp_path):
    log = tmp_path / "preds.jsonl"
    ctl = MarkerOutlet(f"{uid}-ctl", f"{uid}-ctl")
    proc = cli("run", "--source", "synthetic:seed62", "--name", uid, "--no-state", "-q", "--participant", "P01",
               "--session", "1", "--control", f"{uid}-ctl", "--log", log, "--duration", "60")
    try:
        status = _status_inlet(f"{uid}-status")
        text, _ = status.pull_sample(timeout=30)  # the first prediction states its stratum
        assert text is not None and parse_fields(text[0])["participant"] == "P01"
        t0 = time.perf_counter()
        while not ctl.outlet.have_consumers():
            assert time.perf_counter() - t0 < 20, "bci-stream run never connected to the control stream"
            time.sleep(0.05)
        ctl.push("participant=P07;session=2", pylsl.local_clock())
        while True:
            text, _ = status.pull_sample(timeout=max(0.0, 15 - (time.perf_counter() - t0)))
            assert text is not None, "no acknowledgement on the status stream"
            fields = parse_fields(text[0])
            if fields["event"] == "switch":
                break
        assert fields == {"event": "switch", "participant": "P07", "session": "2", "warming_up": "1"}
        time.sleep(1.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        ctl.close()
    assert proc.returncode == 0, err
    assert "stratum switched to P07/2" in err
    strata = [(p["participant"], p["session"]) for p in map(json.loads, log.read_text().splitlines())]
    switch = strata.index(("P07", "2"))
    assert switch > 0 and set(strata[:switch]) == {("P01", "1")} and set(strata[switch:]) == {("P07", "2")}
