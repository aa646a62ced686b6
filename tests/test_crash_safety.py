"""Crash safety of saved statistics: checkpoints survive SIGKILL, damaged state never stops a run,
names and control markers stay bounded (issue 14, item 5)."""

import datetime
import json
import logging
import re
import signal
import threading
import time

import numpy as np
import pylsl
import pytest

from bci_stream.bundle import load_model
from bci_stream.control import parse_fields, parse_stratum
from bci_stream.outlets import MarkerOutlet
from bci_stream.stratified import NAME_RULE, Checkpoints, Prior, Strata, StratifiedNormalizer, check_name
from conftest import cli, cli_run, stop
from test_stratum_control import _status_inlet

KEY = ("P", "1")
GOOD = {"stratum": ["P", "1"], "signature": "s", "count": 3.0, "mean": [1.0, 2.0], "m2": [0.5, 0.5], "halflife": None}
DAMAGED = {  # file contents -> what the warning says is wrong
    "truncated": (json.dumps(GOOD)[:40].encode(), "unreadable"),
    "garbage": (bytes(range(256)) * 4, "unreadable"),
    "empty": (b"", "unreadable"),
    "list": (b"[]", "a JSON list, not an object"),
    "no keys": (b"{}", "no stratum, count, mean, m2"),
    "no mean": (json.dumps({k: v for k, v in GOOD.items() if k != "mean"}).encode(), "no mean"),
    "wrong length": (json.dumps({**GOOD, "mean": [1.0, 2.0, 3.0]}).encode(), "mean has shape (3,), expected 2 features"),
    "nan mean": (json.dumps({**GOOD, "mean": [float("nan"), 2.0]}).encode(), "mean holds non-finite numbers"),
    "negative m2": (json.dumps({**GOOD, "m2": [-1.0, 0.5]}).encode(), "m2 holds negative numbers"),
    "text mean": (json.dumps({**GOOD, "mean": "abc"}).encode(), "mean is not a list of numbers"),
    "short removed": (json.dumps({**GOOD, "removed": [1.0]}).encode(), "removed has shape (1,), expected 2 features"),
    "nan removed": (json.dumps({**GOOD, "removed": [0.0, float("inf")]}).encode(), "removed holds non-finite numbers"),
    "plain text": (json.dumps({**GOOD, "plain": "abc"}).encode(), "plain: a JSON str, not an object"),
    "short plain": (json.dumps({**GOOD, "plain": {**GOOD, "m2": [0.5]}}).encode(),
                    "plain: m2 has shape (1,), expected 2 features"),
    "stratum text": (json.dumps({**GOOD, "stratum": "P/1"}).encode(), "stratum P/1 is not [participant, session]"),
    "stratum of one": (json.dumps({**GOOD, "stratum": ["P"]}).encode(), "stratum ['P'] is not [participant, session]"),
    "stratum number": (json.dumps({**GOOD, "stratum": ["P", 1]}).encode(),
                       "stratum ['P', 1] is not [participant, session]"),
    "long stratum": (json.dumps({**GOOD, "stratum": "x" * 200}).encode(),
                     f"stratum {'x' * 80} is not [participant, session]"),
    "count true": (json.dumps({**GOOD, "count": True}).encode(), "count True is not a finite number >= 0"),
    "count negative": (json.dumps({**GOOD, "count": -1}).encode(), "count -1 is not a finite number >= 0"),
    "count infinite": (json.dumps({**GOOD, "count": float("inf")}).encode(), "count inf is not a finite number >= 0"),
    "count text": (json.dumps({**GOOD, "count": "9" * 100}).encode(), f"count {'9' * 80} is not a finite number >= 0"),
    "halflife zero": (json.dumps({**GOOD, "halflife": 0}).encode(), "halflife 0 is not a finite number > 0"),
    "halflife true": (json.dumps({**GOOD, "halflife": True}).encode(), "halflife True is not a finite number > 0"),
    "halflife infinite": (json.dumps({**GOOD, "halflife": float("inf")}).encode(),
                          "halflife inf is not a finite number > 0"),
    "halflife text": (json.dumps({**GOOD, "halflife": "7" * 100}).encode(),
                      f"halflife {'7' * 80} is not a finite number > 0"),
}


def _warnings_about(caplog, path):
    return [r for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]


def _set_aside(path):
    return list(path.parent.glob(path.name + ".corrupt-*"))


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_state_is_set_aside_with_one_warning_and_the_stratum_starts_fresh(tmp_path, caplog, case):
    """Before: each case raised (or NaN was accepted), so `run` exited 2 or with a traceback."""
    content, why = DAMAGED[case]
    path = tmp_path / "P__1.json"
    path.write_bytes(content)
    n = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    with caplog.at_level(logging.WARNING):
        assert n.stats(KEY).count == 0
    [warning] = _warnings_about(caplog, path)
    # The whole reason, between its brackets (only a file that cannot be parsed adds the parser's words).
    assert f"is damaged ({why}" + ("" if why == "unreadable" else "):") in warning.getMessage()
    assert warning.getMessage().endswith("; its stratum starts fresh")
    [aside] = _set_aside(path)
    assert aside.read_bytes() == content and not path.exists()
    n.update(KEY, np.ones((2, 2)))
    n.save()
    assert StratifiedNormalizer(2, state_dir=tmp_path, signature="s").stats(KEY).count == 2


@pytest.mark.parametrize("edge", [{"count": 0}, {"count": 0.5}, {"halflife": 0.5}, {"halflife": 1e9}])
def test_state_at_the_edges_of_what_is_valid_is_read(tmp_path, caplog, edge):
    """A count of 0 (or a fraction, after forgetting) and any positive finite half-life are valid state."""
    (tmp_path / "P__1.json").write_text(json.dumps({**GOOD, **edge}))
    with caplog.at_level(logging.WARNING):
        stats = StratifiedNormalizer(2, state_dir=tmp_path, signature="s").stats(KEY)
    assert not caplog.records and stats.count == edge.get("count", GOOD["count"])
    assert stats.halflife == edge.get("halflife")


def test_another_models_state_is_still_an_error(tmp_path):
    (tmp_path / "P__1.json").write_text(json.dumps({**GOOD, "signature": "other", "mean": [1.0]}))
    with pytest.raises(ValueError, match="written for features 'other'.*use another --state-dir"):
        StratifiedNormalizer(2, state_dir=tmp_path, signature="s").stats(KEY)


def test_the_participant_prior_sets_other_damaged_sessions_aside_and_never_reads_its_own(tmp_path, caplog):
    """Before: prior_for parsed every file of the participant, its own (--fresh's) included, and raised."""
    (tmp_path / "P__2.json").write_text(json.dumps({**GOOD, "stratum": ["P", "2"]}))
    (tmp_path / "P__3.json").write_bytes(b"\x00garbage")
    (tmp_path / "P__1.json").write_bytes(b"\x00not read")
    n = StratifiedNormalizer(2, Prior(np.zeros(2), np.ones(2), 5.0), state_dir=tmp_path, signature="s",
                             participant_weight=1.0)
    with caplog.at_level(logging.WARNING):
        prior = n.prior_for(KEY)
    np.testing.assert_allclose(prior.mean, GOOD["mean"])  # session 2's
    assert len(_warnings_about(caplog, tmp_path / "P__3.json")) == 1 and _set_aside(tmp_path / "P__3.json")
    assert (tmp_path / "P__1.json").read_bytes() == b"\x00not read"


def test_fresh_strata_never_read_the_saved_file_and_overwrite_it(tmp_path, caplog):
    """Before: Strata took no `fresh`; --fresh read (and choked on) the file before forgetting it."""
    path = tmp_path / "P__1.json"
    path.write_bytes(b"\x00garbage")
    strata = Strata(*KEY, fresh=True)
    with caplog.at_level(logging.WARNING):
        step = strata.track(StratifiedNormalizer(2, state_dir=tmp_path, signature="s"))
    assert not caplog.records and path.read_bytes() == b"\x00garbage"
    step(np.ones((4, 2)))
    strata.save()
    assert json.loads(path.read_text())["count"] == 4 and not _set_aside(path)


def test_non_finite_statistics_are_never_saved(tmp_path, caplog):
    """Before: NaN was written as a JSON NaN token over the last good file."""
    n = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    n.update(KEY, np.ones((3, 2)))
    n.save()
    n.stats(KEY).mean[0] = np.nan
    with caplog.at_level(logging.WARNING):
        n.save()
        n.save()
    assert [r.getMessage() for r in caplog.records if "not finite" in r.getMessage()] == [
        f"statistics of stratum P/1 are not finite: not saved, {tmp_path / 'P__1.json'} keeps the last good ones"]
    assert json.loads((tmp_path / "P__1.json").read_text())["mean"] == [1.0, 1.0]


def test_a_switch_never_waits_for_the_disk_and_no_queued_save_is_dropped(tmp_path):
    """Before: a switch wrote (and fsynced) the stratum it left on the decoding thread, and the background
    writer kept only the latest checkpoint, so it could not take over those saves."""
    strata = Strata("A", "1")
    step = strata.track(StratifiedNormalizer(2, state_dir=tmp_path, signature="s"))
    every = Checkpoints(strata, every=0.0)
    with strata._writing:  # the disk is busy: every write waits
        for n, (participant, session) in enumerate([("B", "1"), ("C", "1"), ("A", "1")], start=2):
            step(np.ones((n, 2)))
            every()
            switching = threading.Thread(target=strata.switch, args=(participant, session), daemon=True)
            switching.start()
            switching.join(5)
            assert not switching.is_alive(), "the switch waited for the disk"
    strata.close()
    counts = {p.name: json.loads(p.read_text())["count"] for p in tmp_path.glob("*.json")}
    assert counts == {"A__1.json": 2, "B__1.json": 3, "C__1.json": 4}


def test_an_older_snapshot_never_overwrites_a_newer_save(tmp_path):
    """A background checkpoint may finish after a switch saved the same stratum. Before: no snapshots."""
    strata = Strata(*KEY)
    step = strata.track(StratifiedNormalizer(2, state_dir=tmp_path, signature="s"))
    step(np.ones((2, 2)))
    old = strata.snapshot()
    step(np.ones((3, 2)))
    strata.save()
    strata.write(old)
    assert json.loads((tmp_path / "P__1.json").read_text())["count"] == 5


@pytest.mark.parametrize("name", ["P07", "P 07 ä", "x" * 64, "日本語", "a.b-c_d~e%f;g=h", "..", "XX"])
def test_names_that_keep_the_rule(name):
    assert check_name(name, "--participant") == name
    assert parse_stratum(f"participant={name.replace('%', '%25').replace(';', '%3B').replace('=', '%3D')}") == {
        "participant": name}


@pytest.mark.parametrize("name,problem", [("", "empty"), ("x" * 65, "65 characters long"), ("a/b", "contains '/'"),
                                          ("a\\b", "contains '\\\\'"), ("a\nb", "contains '\\n'"),
                                          ("a\x00b", "contains '\\x00'"), ("a\u200bb", "contains '\\u200b'")])
def test_names_that_break_the_rule_say_why(name, problem):
    """Before: there was no rule; a long name crashed the run at its first save (File name too long)."""
    with pytest.raises(ValueError) as e:
        check_name(name, "--participant")
    assert str(e.value) == f"--participant: {problem}; a name is {NAME_RULE}"
    if name:
        with pytest.raises(ValueError, match=re.escape(f"participant: {problem}")):
            parse_stratum(f"session=1;participant={name}")


def test_markers_over_a_kilobyte_are_refused_unparsed():
    with pytest.raises(ValueError, match="^marker of 1025 characters, over the limit of 1024$"):
        parse_stratum("session=1;" + "x" * 1015)


@pytest.mark.parametrize("char", ["€", "%", "🧠"])
def test_state_file_names_stay_bounded_for_any_valid_name(tmp_path, char):
    """Before: 64 '€' quoted to 576 characters, and saving failed with File name too long."""
    long, other = char * 64, char * 63 + "b"
    n = StratifiedNormalizer(2, Prior(np.zeros(2), np.ones(2), 5.0), state_dir=tmp_path, signature="s",
                             participant_weight=1.0)
    for key in [(long, long), (long, other), (other, long)]:
        n.update(key, np.full((2, 2), len(key[1] + key[0]) + (key[1] == other)))
        assert len(n._path(key).name.encode()) + len(".%s.12345678.tmp") < 255
    n.save()
    assert len(list(tmp_path.iterdir())) == 3  # three names, three files
    back = StratifiedNormalizer(2, Prior(np.zeros(2), np.ones(2), 5.0), state_dir=tmp_path, signature="s",
                                participant_weight=1.0)
    assert back.stats((long, other)).mean[0] == n.stats((long, other)).mean[0]
    prior = back.prior_for((long, "new"))  # a long participant's other sessions are still found
    np.testing.assert_allclose(prior.mean, np.mean([n.stats((long, long)).mean, n.stats((long, other)).mean], 0))


@pytest.mark.parametrize("name,part", [
    ("P07", "P07"),
    ("x" * 80, "x" * 80),  # as long as a whole part may be
    ("€" * 9, "%E2%82%AC" * 9),  # 81 quoted characters: cut, and told apart by a hash
])
def test_state_file_parts_are_the_quoted_name_or_a_cut_with_its_hash(tmp_path, name, part):
    import hashlib

    path = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")._path((name, "1")).name
    if len(part) <= 80:
        assert path == f"{part}__1.json"
    else:  # independent reference: the first 63 quoted characters, "+", 16 hex digits of the name's SHA-256
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        assert path == f"{part[:63]}+{digest}__1.json" and len(path) == 80 + len("__1.json")


def test_a_damaged_file_is_moved_aside_under_a_dated_name_the_warning_gives(tmp_path, caplog):
    path = tmp_path / "P__1.json"
    path.write_text("[]")
    with caplog.at_level(logging.WARNING):
        StratifiedNormalizer(2, state_dir=tmp_path, signature="s").stats(KEY)
    [aside] = _set_aside(path)
    assert re.fullmatch(r"P__1\.json\.corrupt-\d{8}T\d{6}Z", aside.name)
    assert caplog.records[0].getMessage() == (f"normalizer state {path} is damaged (a JSON list, not an object): "
                                              f"moved aside to {aside.name}; its stratum starts fresh")


def test_the_aside_name_is_dated_in_utc_whatever_the_local_time_zone(tmp_path, monkeypatch):
    path = tmp_path / "P__1.json"
    path.write_text("[]")
    monkeypatch.setenv("TZ", "Asia/Kathmandu")  # UTC+05:45: no whole-hour slip can pass for UTC
    time.tzset()
    try:
        before = time.time()
        StratifiedNormalizer(2, state_dir=tmp_path, signature="s").stats(KEY)
        after = time.time()
    finally:
        monkeypatch.undo()
        time.tzset()
    [aside] = _set_aside(path)
    stamp = datetime.datetime.strptime(aside.name.split("corrupt-")[1], "%Y%m%dT%H%M%SZ")
    assert before - 1 <= stamp.replace(tzinfo=datetime.timezone.utc).timestamp() <= after


def test_a_damaged_file_that_cannot_be_moved_aside_is_said_so_and_overwritten_later(tmp_path, caplog):
    """Moving aside can fail (here: a folder already has every name it could take this minute)."""
    path = tmp_path / "P__1.json"
    path.write_text("[]")
    now = datetime.datetime.now(datetime.timezone.utc)
    for s in range(-2, 60):
        taken = tmp_path / f"P__1.json.corrupt-{(now + datetime.timedelta(seconds=s)):%Y%m%dT%H%M%SZ}"
        taken.mkdir()
    n = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    with caplog.at_level(logging.WARNING):
        assert n.stats(KEY).count == 0
    assert re.fullmatch(rf"normalizer state {re.escape(str(path))} is damaged \(a JSON list, not an object\): not moved "
                        r"aside \(\[Errno 21\] Is a directory: .*\), overwritten at the next save; its stratum "
                        r"starts fresh", caplog.records[0].getMessage())
    n.update(KEY, np.ones((2, 2)))
    n.save()
    assert json.loads(path.read_text())["count"] == 2


def test_unsaveable_statistics_of_one_stratum_leave_the_others_saved(tmp_path, caplog):
    n = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    for key in [("P", "1"), ("P", "2"), ("Q", "1")]:
        n.update(key, np.ones((2, 2)))
    n.stats(("P", "1")).m2[1] = np.inf
    with caplog.at_level(logging.WARNING):
        n.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P__2.json", "Q__1.json"]


def test_a_file_under_another_name_claiming_a_stratum_is_not_taken_for_it(tmp_path):
    """A copy (``P__1 (copy).json``) holds P/1's stratum: the participant's prior skips it, and P/1 is still read
    from its own file."""
    (tmp_path / "P__1.json").write_text(json.dumps(GOOD))
    (tmp_path / "P__1 (copy).json").write_text(json.dumps({**GOOD, "count": 99.0, "mean": [7.0, 7.0]}))
    (tmp_path / "P__2.json").write_text(json.dumps({**GOOD, "stratum": ["P", "2"], "mean": [3.0, 4.0]}))
    n = StratifiedNormalizer(2, Prior(np.zeros(2), np.ones(2), 5.0), state_dir=tmp_path, signature="s",
                             participant_weight=1.0)
    np.testing.assert_allclose(n.prior_for(KEY).mean, [3.0, 4.0])
    assert n.stats(KEY).count == GOOD["count"]


def test_a_save_rewrites_only_the_current_stratum(tmp_path):
    """A switch saves the stratum it leaves; later saves (checkpoints, the last one at exit) leave its file be."""
    strata = Strata("P", "1")
    step = strata.track(StratifiedNormalizer(2, state_dir=tmp_path, signature="s"))
    step(np.ones((2, 2)))
    strata.switch("P", "2")
    strata.save()  # writes the switch's queued save too
    left = (tmp_path / "P__1.json").stat().st_ino
    assert json.loads((tmp_path / "P__1.json").read_text())["count"] == 2
    step(np.ones((3, 2)))
    strata.save()
    assert (tmp_path / "P__1.json").stat().st_ino == left
    assert json.loads((tmp_path / "P__2.json").read_text())["count"] == 3


# ---------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def signature():
    return load_model("seed62").signature


def _state_files(state_dir, signature, name="P__1.json"):
    """The input normalizer's file of a stratum, then each hidden layer's."""
    return [state_dir / signature / name, *(state_dir / signature / "network" / f"layer{i}" / name for i in range(3))]


def _damage(path, case, signature):
    """Write DAMAGED[case] at ``path`` as the model of ``signature`` would have (else it is another model's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    layer = path.parent.name if path.parent.name.startswith("layer") else None
    own = f'"signature": "{signature}-{layer}"' if layer else f'"signature": "{signature}"'
    path.write_bytes(DAMAGED[case][0].replace(b'"signature": "s"', own.encode()))


def _predictions(stderr):
    return int(re.search(r"done: (\d+) predictions", stderr).group(1))


def test_sigkill_loses_at_most_one_checkpoint_and_the_next_run_resumes(uid, tmp_path, signature):
    """Before: statistics were saved only at a clean exit (and --checkpoint did not exist)."""
    files = _state_files(tmp_path, signature, "P__S.json")
    args = ["run", "--source", "synthetic:seed62", "--name", uid, "-q", "--participant", "P", "--session", "S",
            "--state-dir", tmp_path, "--checkpoint", "0.5"]
    proc = cli(*args)
    try:
        seen, t0 = set(), time.perf_counter()
        while len(seen) < 3:  # three checkpoints
            assert time.perf_counter() - t0 < 30 and proc.poll() is None, "no checkpoints written"
            if files[0].exists():
                seen.add(json.loads(files[0].read_text())["count"])
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop(proc)
    counts = [json.loads(f.read_text())["count"] for f in files]
    assert counts[0] > 0 and counts[1:] == [counts[0]] * 3  # every statistic of the stratum, from one snapshot
    again = cli_run(*args, "--duration", "2", timeout=60)
    assert again.returncode == 0, again.stderr
    assert json.loads(files[0].read_text())["count"] == counts[0] + _predictions(again.stderr)


def test_run_sets_damaged_state_aside_and_starts_fresh(uid, tmp_path, signature):
    """Before: the first damaged file ended the run with exit 2 (or a traceback)."""
    files = _state_files(tmp_path, signature)
    others = [tmp_path / signature / f"P__{s}.json" for s in (2, 3, 4)]  # read for the participant's prior
    contents = ["truncated", "list", "nan mean", "no keys", "garbage", "empty", "wrong length"]
    for path, case in zip(files + others, contents):
        _damage(path, case, signature)
    r = cli_run("run", "--source", "synthetic:seed62", "--name", uid, "-q", "--participant", "P", "--session", "1",
                "--state-dir", tmp_path, "--duration", "1", timeout=60)
    assert r.returncode == 0, r.stderr
    for path, case in zip(files + others, contents):
        assert len([line for line in r.stderr.splitlines() if f"{path} is damaged" in line]) == 1, case
        assert _set_aside(path), case
    assert [json.loads(f.read_text())["count"] for f in files] == [_predictions(r.stderr)] * 4  # fresh
    assert not any(p.exists() for p in others)


def test_fresh_run_never_reads_a_damaged_state_file(uid, tmp_path, signature):
    """Before: exit 2, `normalizer state ...: unreadable`, --fresh or not."""
    files = _state_files(tmp_path, signature)
    for path in files:
        _damage(path, "garbage", signature)
    r = cli_run("run", "--source", "synthetic:seed62", "--name", uid, "-q", "--participant", "P", "--session", "1",
                "--state-dir", tmp_path, "--duration", "1", "--fresh", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "damaged" not in r.stderr and not list(tmp_path.rglob("*.corrupt-*"))
    assert [json.loads(f.read_text())["count"] for f in files] == [_predictions(r.stderr)] * 4


@pytest.mark.parametrize("where", ["flag", "config"])
def test_an_overlong_participant_is_a_one_line_error(tmp_path, where):
    """Before: the run started (and, with state, crashed at its first save: File name too long)."""
    args = ["run", "--source", "synthetic:seed62", "--no-state", "-q", "--duration", "1"]
    if where == "flag":
        r = cli_run(*args, "--participant", "x" * 300, timeout=60)
        expected = f"--participant: 300 characters long; a name is {NAME_RULE}"
    else:
        (tmp_path / "c.toml").write_text('session = "a/b"\n')
        r = cli_run(*args, "--config", tmp_path / "c.toml", timeout=60)
        expected = f"config {tmp_path / 'c.toml'}: session must be a name of {NAME_RULE}, got 'a/b'"
    assert r.returncode == 2 and r.stderr.splitlines() == [f"bci-stream run: error: {expected}"]


def test_a_flood_on_the_control_stream_is_refused_with_a_short_echo_and_decoding_goes_on(uid):
    """Before: the 10-kB name was switched to (and, with state, crashed the run at the switch's save)."""
    ctl = MarkerOutlet(f"{uid}-ctl", f"{uid}-ctl")
    proc = cli("run", "--source", "synthetic:seed62", "--name", uid, "--no-state", "-q", "--participant", "P01",
               "--control", f"{uid}-ctl", "--duration", "60")
    try:
        status = _status_inlet(f"{uid}-status")
        t0 = time.perf_counter()
        while not ctl.outlet.have_consumers():
            assert time.perf_counter() - t0 < 20, "bci-stream run never connected to the control stream"
            time.sleep(0.05)
        ctl.push("participant=" + "x" * 10240, pylsl.local_clock())
        events = []
        while not events or events[-1]["event"] != "rejected":
            text, _ = status.pull_sample(timeout=15)
            assert text is not None, "no acknowledgement on the status stream"
            events.append(parse_fields(text[0]))
        ack = events[-1]
        assert ack["marker"] == "participant=" + "x" * 188 + "... (10252 characters)"
        assert ack["reason"] == "marker of 10252 characters, over the limit of 1024"
        labels = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{uid}-labels", timeout=10)[0])
        got, t0 = [], time.perf_counter()
        while len(got) < 5:
            assert time.perf_counter() - t0 < 10 and proc.poll() is None, "no labels after the flood"
            sample, _ = labels.pull_sample(timeout=1.0)
            if sample is not None:
                got.append(sample)
    finally:
        stop(proc)
        ctl.close()
    assert proc.returncode == 0


def test_checkpoints_write_the_current_stratum_when_due_on_their_own_thread(tmp_path, caplog):
    """In process, so each step is seen: nothing before the interval, the latest statistics once it has passed,
    a failing write warned about (not raised into the decoding thread), and a closed writer gone."""
    strata = Strata("P", "1")
    n = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    step = strata.track(n)
    saved = tmp_path / "P__1.json"

    def count_when_written(previous):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if saved.exists() and (c := json.loads(saved.read_text())["count"]) != previous:
                return c
            time.sleep(0.01)
        return previous

    every = Checkpoints(strata, every=0.2)
    step(np.ones((3, 2)))
    every()
    time.sleep(0.05)
    assert not saved.exists()  # not due yet
    time.sleep(0.2)
    every()
    assert count_when_written(None) == 3
    step(np.ones((2, 2)))
    every()  # due again only 0.2 s after the last checkpoint
    time.sleep(0.05)
    assert json.loads(saved.read_text())["count"] == 3
    time.sleep(0.2)
    every()
    assert count_when_written(3) == 5
    saved.unlink()
    n.state_dir = tmp_path / "gone" / "deeper"  # the write fails: said, not raised
    (tmp_path / "gone").write_text("a file where a folder should be")
    step(np.ones((1, 2)))
    time.sleep(0.25)
    with caplog.at_level(logging.WARNING):
        every()
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert re.fullmatch(r"statistics of stratum P/1 not saved: \[Errno 20\] Not a directory: .*gone.*",
                        caplog.records[0].getMessage())
    # A daemon, so a run that dies without close() is not kept alive by it; named for thread dumps.
    assert strata._thread.daemon and strata._thread.name == "bci-stream saves"
    n.state_dir = tmp_path
    strata.close()
    assert not strata._thread.is_alive()
    assert json.loads(saved.read_text())["count"] == 6  # close saved what was left


@pytest.mark.parametrize("one,other", [(("a__b", "c"), ("a", "b__c")), (("a_", "b"), ("a", "_b")),
                                       (("a___b", "c"), ("a_", "_b__c"))])
def test_strata_whose_names_join_alike_keep_their_own_files(tmp_path, one, other):
    """Before: both were saved as ``a__b__c.json``; the second overwrote the first, which then resumed its stats."""
    n = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    n.update(one, np.ones((2, 2)))
    n.update(other, np.full((5, 2), 3.0))
    n.save()
    back = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    assert (back.stats(one).count, back.stats(other).count) == (2, 5)
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("key,name", [(("sub_01", "ses_1"), "sub_01__ses_1.json"), (("_x", "y"), "_x__y.json"),
                                      (("a__b", "c"), "a%5F_b__c.json"), (("a_", "_b"), "a%5F___b.json"),
                                      (("__", "1"), "%5F%5F__1.json")])
def test_state_file_names_quote_only_the_underscores_that_could_join_alike(tmp_path, key, name):
    """Worked by hand: an underscore is quoted where another follows it or it ends the name, nowhere else, so
    names with single inner underscores keep the file names of earlier versions."""
    assert StratifiedNormalizer(2, state_dir=tmp_path)._path(key).name == name


def test_strata_resume_what_was_saved_unless_fresh(tmp_path):
    (tmp_path / "P__1.json").write_text(json.dumps(GOOD))
    strata = Strata(*KEY)
    strata.track(StratifiedNormalizer(2, state_dir=tmp_path, signature="s"))
    assert strata.stats().count == GOOD["count"]
