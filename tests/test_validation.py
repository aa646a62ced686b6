"""A user's mistake ends with exit code 2 and one line naming the option and what it accepts, never a traceback."""

import logging
import shlex
import time

import mne
import numpy as np
import pylsl
import pytest

from bci_stream import filters
from bci_stream.cli import main
from bci_stream.filters import FilterSpec, design_sos
from bci_stream.stratified import NAME_RULE
from conftest import cli, cli_run, stop

#: (command line, option, what the error says it expects).
NUMBERS = [
    ("run --window 0", "--window", "seconds > 0"),
    ("run --hop -0.5", "--hop", "seconds > 0"),
    ("run --duration nan", "--duration", "seconds > 0"),
    ("view --source synthetic:seed62 --timeout 0", "--timeout", "seconds > 0"),
    ("view --source synthetic:seed62 --duration -1", "--duration", "seconds > 0"),
    ("train -o m.pt --window 0", "--window", "seconds > 0"),
    ("train -o m.pt --train-hop 0", "--train-hop", "seconds > 0"),
    ("train -o m.pt --hop 0", "--hop", "seconds > 0"),
    ("train -o m.pt --epochs 0", "--epochs", "an integer >= 1"),
    ("evaluate --epochs 2.5", "--epochs", "an integer >= 1"),
    ("evaluate --batch-strata 0", "--batch-strata", "an integer >= 1"),
    ("simulate --srate 0", "--srate", "Hz > 0"),
    ("simulate --trial -1", "--trial", "seconds > 0"),
    ("simulate --duration 0", "--duration", "seconds > 0"),
    ("replay x.fif --speed 0", "--speed", "a speed factor > 0"),
    ("replay x.fif --trial 0", "--trial", "an integer >= 1"),
    ("replay x.fif --wait -1", "--wait", "seconds >= 0"),
    ("features d --dataset seed -o f.npz --window 0", "--window", "seconds > 0"),
    ("features d --dataset seed -o f.npz --hop inf", "--hop", "seconds > 0"),
    ("synthesize d --participants 0", "--participants", "an integer >= 1"),
    ("synthesize d --sessions x", "--sessions", "an integer >= 1"),
    ("synthesize d --trial-seconds 0", "--trial-seconds", "seconds > 0"),
    ("devices --wait 0", "--wait", "seconds > 0"),
    ("run --bandpass 50,1", "--bandpass", "LOW,HIGH in Hz with 0 < LOW < HIGH"),
    ("run --bandpass 0,40", "--bandpass", "LOW,HIGH in Hz with 0 < LOW < HIGH"),
    ("run --notch 0", "--notch", "a frequency in Hz > 0 or off"),
]


def _main(capsys, argv) -> tuple[int, list[str]]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("line,option,expected", NUMBERS, ids=[c[0] for c in NUMBERS])
def test_out_of_range_numbers_are_refused_while_parsing(capsys, line, option, expected):
    """The trailing unknown flag shows the value is refused before anything runs (argparse reports unknown
    flags only once every value has been converted)."""
    command = line.split()[0]
    code, err = _main(capsys, [*shlex.split(line), "--not-a-flag"])
    value = shlex.split(line)[shlex.split(line).index(option) + 1]
    assert code == 2
    assert err[-1] == f"bci-stream {command}: error: argument {option}: expected {expected}, got {value!r}"


@pytest.mark.parametrize("argv", [
    ["run", "--source", "nosuch:x"],  # the device is checked before the source opens
    ["train", "--dataset", "seed", "/nonexistent", "-o", "m.pt"],  # ... and before a dataset is read
    ["evaluate", "--dataset", "seed", "/nonexistent"],
], ids=lambda a: a[0])
@pytest.mark.parametrize("device", ["gpu", "cuda:99", "CPU"])
def test_device_torch_cannot_use_is_refused_first(capsys, argv, device):
    code, err = _main(capsys, [*argv, "--device", device])
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"bci-stream {argv[0]}: error: --device {device}: not a torch device here; "
                             "this machine has: cpu")


def _run_line(*args):
    r = cli_run("run", "--source", "synthetic:seed62", "--duration", "1", "--no-state", "-q", *args, timeout=60)
    return r.returncode, r.stderr.strip().splitlines()


NYQUIST = "Nyquist (100 Hz) of stream 'synthetic-seed62' at 200 Hz"


@pytest.mark.parametrize("args,message", [
    (["--bandpass", "1,150"], f"--bandpass 1,150: the high edge must be below {NYQUIST}"),
    (["--bandpass", "120,150"], f"--bandpass 120,150: the low edge must be below {NYQUIST}"),
    (["--notch", "500"], f"--notch 500: must be above 0 and below {NYQUIST}"),
    ("[filters]\nbandpass = [1.0, 150.0]\n", f"--bandpass 1,150: the high edge must be below {NYQUIST}"),
], ids=["bandpass-high", "bandpass-low", "notch", "toml"])
def test_user_filters_above_nyquist_are_errors(tmp_path, args, message):
    """Only the model's own filters adapt to a slow stream; a value the user typed is a mistake to report."""
    if isinstance(args, str):
        (tmp_path / "run.toml").write_text(args)
        args = ["--config", tmp_path / "run.toml"]
    code, err = _run_line(*args)
    assert code == 2 and "Traceback" not in "\n".join(err)
    assert err[-1] == f"bci-stream run: error: {message}"


@pytest.mark.parametrize("flag", ["--window", "--hop"])
def test_window_or_hop_under_one_sample_names_the_flag(flag):
    code, err = _run_line(flag, "0.001")
    assert code == 2 and "Traceback" not in "\n".join(err)
    assert err[-1] == f"bci-stream run: error: {flag} 0.001 s is shorter than one sample at 200 Hz"


def test_model_filters_beyond_nyquist_adapt_with_one_warning(monkeypatch, caplog):
    """A model trained at 200 Hz still runs on a 90-Hz stream, but the user learns its filters changed."""
    monkeypatch.setattr(filters, "_warned", set())
    spec = FilterSpec(bandpass=(1.0, 50.0), notch=50.0)
    with caplog.at_level(logging.WARNING, "bci_stream.filters"):
        sos = [design_sos(spec, 90.0) for _ in range(3)]
    assert all(s.shape[0] == 2 for s in sos)  # a 4th-order high-pass, no notch
    warnings = [r.getMessage() for r in caplog.records if r.name == "bci_stream.filters"]
    assert warnings == ["band-pass 1-50 Hz reaches 0.95 x Nyquist (45 Hz) at 90 Hz: high-pass at 1 Hz only",
                        "notch 50 Hz is not below Nyquist (45 Hz) at 90 Hz: no notch"]


def test_short_replay_waits_for_a_consumer_started_later(tmp_path, uid):
    """A 2-s file would be over before a consumer started next could resolve it."""
    x = np.random.default_rng(0).standard_normal((4, 256)) * 1e-5
    path = tmp_path / "short_raw.fif"
    mne.io.RawArray(x, mne.create_info([f"E{i}" for i in range(4)], 128.0, "eeg"), verbose="error").save(
        path, verbose="error")
    replay = cli("replay", path, "--name", uid)
    inlet = None
    try:
        while "replaying" not in (line := replay.stderr.readline()):
            assert line, "replay exited before it started"
        time.sleep(3.5)  # longer than the recording, and than the replay of it would last without waiting
        found = pylsl.resolve_byprop("name", uid, timeout=10)
        assert found, "the replay's stream was gone before a consumer came"
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(timeout=5)
        got, deadline = [], time.monotonic() + 8
        while sum(map(len, got)) < 64 and time.monotonic() < deadline:
            data, ts = inlet.pull_chunk(timeout=0.2)
            if ts:
                got.append(np.asarray(data, np.float32))
    finally:
        inlet = None
        stop(replay)
        replay.communicate()
    assert got, "the consumer received nothing"
    np.testing.assert_allclose(np.concatenate(got)[:64], x.T[:64] * 1e6, rtol=1e-5)  # from the first sample on


@pytest.mark.parametrize("flag,name,problem", [("--participant", "P/07", "contains '/'"),
                                               ("--session", "s" * 65, "65 characters long"),
                                               ("--participant", "", "empty")])
def test_view_refuses_bad_stratum_names_as_run_does(tmp_path, flag, name, problem):
    """Before: view decoded under the name, which a state file could not be named after."""
    r = cli_run("view", "--source", "synthetic:seed62", flag, name, "--duration", "1", "--screenshot",
                tmp_path / "v.png", timeout=60)
    expected = f"bci-stream view: error: {flag}: {problem}; a name is {NAME_RULE}"
    assert r.returncode == 2 and r.stderr.splitlines() == [expected]
    assert not (tmp_path / "v.png").exists()


def test_view_attach_refuses_options_that_only_a_pipeline_it_runs_would_use():
    """Before: --attach silently ignored them, so a user could think they had chosen the model or stratum shown."""
    r = cli_run("view", "--attach", "somewhere", "--model", "seed62", "--session", "2", timeout=60)
    assert r.returncode == 1 and r.stderr.splitlines() == [
        "bci-stream view: --model, --session only apply with --source; the pipeline publishing somewhere-labels "
        "chose its own (switch its stratum with run --control)"]


@pytest.mark.parametrize("flags, expected", [([], True), (["--class-aware"], True), (["--class-aware", "on"], True),
                                             (["--class-aware", "off"], False), (["--no-class-aware"], False),
                                             (["--class-aware", "auto"], "auto")])
def test_class_aware_flags(flags, expected):
    from bci_stream.cli import _train_settings, build_parser

    for command in (["train", "-o", "m.pt"], ["evaluate"]):
        assert _train_settings(build_parser().parse_args([*command, *flags])).class_aware == expected


def test_class_aware_auto_without_people_to_choose_on_is_refused(capsys, tmp_path):
    code, err = _main(capsys, ["train", "--dataset", "synthetic", "--participants", "2", "--sessions", "1",
                               "--trials", "3", "--trial-seconds", "3", "--epochs", "1", "--class-aware", "auto",
                               "-q", "-o", tmp_path / "m.pt"])
    assert code == 2
    assert err[-1] == ("bci-stream train: error: class-aware auto chooses on held-out training participants: it "
                       "needs at least 3 participants and a holdout, got 2 participant(s) and holdout 0.2")
    assert not (tmp_path / "m.pt").exists()
