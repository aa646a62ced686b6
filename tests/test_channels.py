"""Real headsets' channels: names as files and streams spell them, units, interpolation onto a model's
montage (checked against MNE's own interpolate_bads), and a model trained for a headset's montage."""

import mne
import numpy as np
import pylsl
import pytest

from bci_stream.bundle import ModelBundle
from bci_stream.channels import MontageError, match, parse_rename
from bci_stream.devices.files import read_recording
from bci_stream.montages import SEED62
from bci_stream.stream import StreamInfo, unit_of
from conftest import cli, cli_run, stop

EXIMIA = "eximia_60ch_1450hz.nxe"


@pytest.fixture
def eximia(real_data_dir):
    return real_data_dir / EXIMIA


def _raw_eeg(path) -> mne.io.BaseRaw:
    return mne.io.read_raw(path, preload=True, verbose="error").pick("eeg")


@pytest.mark.parametrize("spell", [
    lambda c: f"EEG {c.upper()}-REF",  # EDF exports (TUH and many clinical systems)
    lambda c: {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}.get(c, c),  # the old 10-20 names
    lambda c: (c[0] + c[1:].lower()).ljust(4, "."),  # PhysioNet's EDFs: "Fc5.", "Fcz.", "C3.."
    lambda c: f"{c}-A1",
])
def test_files_with_other_spellings_match_without_rename(eximia, tmp_path, spell):
    raw = _raw_eeg(eximia)
    original = list(raw.ch_names)
    raw.rename_channels({c: spell(c) for c in original})
    raw.save(tmp_path / "spelled_raw.fif", verbose="error")
    rec = read_recording(tmp_path / "spelled_raw.fif")
    assert list(rec.info.channel_names) != original
    cm = match(original, rec.info)
    assert not cm.interpolated and not cm.unused
    # Each model channel reads the column that holds that electrode's signal.
    np.testing.assert_allclose(cm(rec.data()), (raw.get_data() * 1e6).T, rtol=1e-6)  # FIF stores float32


def test_rename_and_its_errors():
    info = StreamInfo("amp", ["E1", "E2", "Cz"], 250.0)
    cm = match(["Fp1", "Fp2", "Cz"], info, rename=parse_rename("E1=Fp1, E2=Fp2"))
    np.testing.assert_array_equal(cm.picks, [0, 1, 2])
    assert "renamed: E1=Fp1, E2=Fp2" in cm.summary("m")
    with pytest.raises(MontageError, match=r"--rename: stream 'amp' has no channel\(s\) \['E9'\]"):
        match(["Cz"], info, rename={"E9": "Fp1"})
    with pytest.raises(ValueError, match="--rename: expected OLD=NEW"):
        parse_rename("E1:Fp1")
    with pytest.raises(MontageError, match="channels 'T3' and 'T7' both name T7"):
        match(["T7"], StreamInfo("both", ["T3", "T7"], 250.0))


@pytest.mark.parametrize("spellings,unit", [
    (["microvolts"], "microvolts"), (["µV", "uV"], "microvolts"), (["V"], "volts"), (["mV"], "millivolts"),
    (["nV"], "nanovolts"), (["0"], "volts"), (["-6"], "microvolts"), (["-3"], "millivolts"), (["-9"], "nanovolts"),
    ([""], "microvolts"),
])
def test_units_as_streams_spell_them(spellings, unit):
    assert unit_of(spellings, "s") == unit


def test_unknown_or_mixed_units_are_errors_naming_them():
    with pytest.raises(ValueError, match=r"stream 'x': unknown channel unit\(s\) \['furlongs'\]"):
        unit_of(["uV", "furlongs"], "stream 'x'")
    with pytest.raises(ValueError, match=r"EEG channels mix units \['V', 'uV'\]"):
        unit_of(["uV", "V"], "stream 'x'")


def test_lsl_types_units_and_positions_are_read(uid):
    """Non-EEG channels of a stream keep their type (and any unit); positions in XDF's millimetres are read."""
    from bci_stream.sources import open_source

    lsl = pylsl.StreamInfo(uid, "", 3, 250, "float32", f"{uid}-src")
    chans = lsl.desc().append_child("channels")
    for label, unit, kind, xyz in (("Fp1", "-6", "eeg", (-29.4, 83.9, -7.0)), ("Cz", "-6", "eeg", None),
                                   ("Trig", "", "stim", None)):
        ch = chans.append_child("channel")
        for k, v in (("label", label), ("unit", unit), ("type", kind)):
            ch.append_child_value(k, v)
        if xyz:
            loc = ch.append_child("location")
            for axis, v in zip("XYZ", xyz):
                loc.append_child_value(axis, str(v))
    out = pylsl.StreamOutlet(lsl)
    try:
        with open_source(f"lsl:source_id={uid}-src?timeout=5") as src:
            info = src.info
    finally:
        del out
    assert info.unit == "microvolts" and info.channel_types == ("EEG", "EEG", "STIM")
    np.testing.assert_allclose(info.positions["Fp1"], (-0.0294, 0.0839, -0.007))
    assert "Cz" not in info.positions
    cm = match(["Cz", "Fp1"], info)
    assert cm.left_out == {"Trig": "STIM"} and list(cm.picks) == [1, 0]


def _interpolated_by_mne(path, model):
    """The reference: MNE's interpolate_bads on the recording with the model's missing channels added as bad,
    at standard 10-05 positions (MNE's colin27_1005, formerly standard_1005; SEED's CB1/CB2 one Oz->Iz step
    below O1/O2, on O1/O2's sphere)."""
    raw = _raw_eeg(path)
    have = {c.upper() for c in raw.ch_names}
    missing = [c for c in model if c.upper() not in have]
    raw.add_channels([mne.io.RawArray(np.zeros((len(missing), raw.n_times)),
                                      mne.create_info(missing, raw.info["sfreq"], "eeg"), verbose="error")])
    std = {k.upper(): v for k, v in mne.channels.make_standard_montage("colin27_1005").get_positions()["ch_pos"].items()}
    for cb, o in (("CB1", "O1"), ("CB2", "O2")):
        p = std[o] + std["IZ"] - std["OZ"]
        std[cb] = p / np.linalg.norm(p) * np.linalg.norm(std[o])
    raw.set_montage(mne.channels.make_dig_montage({c: std[c.upper()] for c in raw.ch_names}, coord_frame="head"))
    raw.info["bads"] = missing
    raw.interpolate_bads(reset_bads=True, verbose="error")
    by_upper = {c.upper(): c for c in raw.ch_names}
    return raw.get_data(picks=[by_upper[c.upper()] for c in model]).T * 1e6, missing


def test_interpolation_equals_mne_interpolate_bads(eximia):
    expected, missing = _interpolated_by_mne(eximia, SEED62)
    rec = read_recording(eximia)
    cm = match(SEED62, rec.info)
    assert list(cm.interpolated) == missing and len(missing) == 12
    got = cm(rec.data())
    scale = np.abs(expected).max(axis=0)
    assert np.max(np.abs(got - expected) / scale) < 1e-5
    # Not trivially so: the interpolated channels are not copies of a neighbour or zero.
    for j in [SEED62.index(c) for c in missing]:
        assert np.std(got[:, j]) > 0 and not np.any([np.allclose(got[:, j], got[:, k]) for k in range(62) if k != j])


def test_interpolation_limits_name_channels_and_the_remedy():
    info = StreamInfo("frontal", ["Fp1", "Fp2", "F3", "F4", "F7", "F8", "Fz"], 250.0)
    with pytest.raises(MontageError, match=r"no electrode within 6 cm of Oz \(nearest 1\d\.\d cm\).*--channels-of"):
        match(["Fp1", "Fp2", "F3", "F4", "F7", "F8", "Fz", "Oz"], info)
    with pytest.raises(MontageError, match=r"lacks 3 of .* 8 channels \(38%, above the 25%.*: Oz, O1, O2"):
        match(["Fp1", "Fp2", "F3", "F4", "Fz", "Oz", "O1", "O2"], info)
    with pytest.raises(MontageError, match=r"channel\(s\) \['X9'\], missing from stream 'frontal', have no known position"):
        match(["Fp1", "Fp2", "F3", "F4", "F7", "F8", "Fz", "X9"], info)


def test_summary_stays_readable_with_many_channels():
    names = [f"E{i}" for i in range(138)]
    info = StreamInfo("hd", names + ["Cz", "Pz"], 500.0)
    text = match(["Cz", "Pz"], info).summary("m")
    assert "unused: 138 of the stream's EEG channels: E0, E1" in text and "and 126 more" in text
    assert max(len(line) for line in text.splitlines()) < 200


def test_run_on_the_real_eximia_file_interpolates_onto_seed62(eximia):
    # MNE's eXimia reader gives microvolts as volts (about 1e8 µV as read): bci-stream says so, and the unit is given.
    r = cli_run("run", "--source", f"file:{eximia}?loop=1&unit=microvolts", "--model", "seed62", "--duration", "12",
                "--no-state", "-q", "--name", "unused-prefix-eximia")
    assert r.returncode == 0, r.stderr
    assert "channels: 50 of model seed62's 62 found in stream 'eximia_60ch_1450hz'" in r.stderr
    assert "interpolated (spherical spline from 60 channels): 12: AF3, AF4, F5, F6, P5, P6, PO7, PO5, PO6, PO8, CB1, CB2" \
        in r.stderr
    assert "left out by type: GateIn (STIM), Trig1 (STIM), Trig2 (STIM), EOG (EOG)" in r.stderr
    assert "trained on synthetic EEG" in r.stderr and "mean nothing about this person" in r.stderr
    done = next(line for line in r.stderr.splitlines() if line.startswith("done:"))
    assert int(done.split()[1]) >= 100  # 12 s at a 0.1-s hop, less the first window


def test_a_file_read_in_the_wrong_unit_is_said_and_its_unit_can_be_given(eximia, caplog):
    """MNE reads this eXimia file at ~1e8 µV (its reader gives µV as volts): a warning says so; ?unit= corrects it."""
    with caplog.at_level("WARNING", "bci_stream.devices.files"):
        as_read = read_recording(eximia)
    assert "its unit may be wrong; state it with file:PATH?unit=microvolts" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", "bci_stream.devices.files"):
        given = read_recording(eximia, unit="microvolts")
    assert not caplog.text
    np.testing.assert_allclose(given.data(), as_read.data() * 1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match=r"unknown channel unit\(s\) \['furlongs'\]"):
        read_recording(eximia, unit="furlongs")


def test_model_for_a_subset_montage_runs_without_interpolation(eximia, tmp_path):
    """--channels-of a 14-channel file: the model reads exactly that montage, so nothing is interpolated live."""
    # Not C4: it clips at times in this recording, and a 14-channel cap has no neighbour close enough to replace it.
    raw = _raw_eeg(eximia).pick(["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "CP4", "T8", "O1", "O2"])
    raw.rename_channels({c: f"EEG {c.upper()}-REF" for c in raw.ch_names})
    raw.apply_function(lambda x: x * 1e-6)  # MNE's eXimia reader gives µV as volts; this file is in volts
    raw.save(tmp_path / "cap14_raw.fif", verbose="error")
    model = tmp_path / "cap14.pt"
    t = cli_run("train", "--dataset", "synthetic", "--participants", "3", "--sessions", "1", "--trials", "3",
                "--epochs", "5", "--channels-of", f"file:{tmp_path / 'cap14_raw.fif'}", "-q", "-o", model)
    assert t.returncode == 0, t.stderr
    assert "montage: training on 14 channel(s): EEG FP1-REF" in t.stderr
    bundle = ModelBundle.load(model)
    assert bundle.channels == raw.ch_names and len(bundle.feature_names) == 14 * 5
    r = cli_run("run", "--source", f"file:{tmp_path / 'cap14_raw.fif'}", "--model", model, "--duration", "3",
                "--no-state", "-q", "--name", "unused-prefix-cap14")
    assert r.returncode == 0, r.stderr
    assert "channels: 14 of model cap14's 14 found" in r.stderr and "interpolated" not in r.stderr


def _run_on_lsl(name: str, seconds: float = 8, unit: str = "") -> str:
    r = cli_run("run", "--source", f"lsl:name={name}" + (f"?unit={unit}" if unit else ""), "--model", "seed62",
                "--duration", seconds, "--no-state", "-q", "--name", f"{name}-out")
    assert r.returncode == 0, r.stderr
    done = next(line for line in r.stderr.splitlines() if line.startswith("done:"))
    assert int(done.split()[1]) >= 10 * (seconds - 2)  # a label per 0.1-s hop once the first window is full
    return r.stderr


def test_replayed_real_recording_decodes_over_lsl(eximia, uid):
    replay = cli("replay", eximia, "--loop", "--name", uid, "--unit", "microvolts")
    try:
        err = _run_on_lsl(uid)
    finally:
        stop(replay)
    assert f"channels: 50 of model seed62's 62 found in stream '{uid}'" in err
    assert "interpolated (spherical spline from 60 channels): 12: AF3" in err


def test_mne_lsl_player_stream_decodes(eximia, uid):
    """MNE-LSL's PlayerLSL writes units as exponents ("0": volts), types in lower case, every channel of the file."""
    from mne_lsl.player import PlayerLSL

    player = PlayerLSL(eximia, chunk_size=64, name=uid, source_id=f"{uid}-src")
    player.start()
    try:
        err = _run_on_lsl(uid, unit="microvolts")  # PlayerLSL says "0" (volts) of MNE's eXimia numbers, µV in truth
    finally:
        player.stop()
    assert f"channels: 50 of model seed62's 62 found in stream '{uid}'" in err
    assert "interpolated (spherical spline from 60 channels): 12" in err
    assert "left out by type: GateIn (STIM), Trig1 (STIM), Trig2 (STIM), EOG (EOG)" in err


def test_unnamed_channels_with_digitized_positions_match_by_position(eximia, tmp_path, rng):
    """A cap whose channels are E1..E60, with positions digitized within 2 mm of their sites."""
    raw = _raw_eeg(eximia)
    std = {k.upper(): v for k, v in mne.channels.make_standard_montage("colin27_1005").get_positions()["ch_pos"].items()}
    named = list(raw.ch_names)
    digitized = {f"E{k + 1}": std[c.upper()] + rng.uniform(-0.002, 0.002, 3) for k, c in enumerate(named)}
    raw.rename_channels({c: f"E{k + 1}" for k, c in enumerate(named)})
    raw.set_montage(mne.channels.make_dig_montage(digitized, coord_frame="head"))
    raw.save(tmp_path / "digitized_raw.fif", verbose="error")
    rec = read_recording(tmp_path / "digitized_raw.fif")
    assert set(rec.info.positions) == set(digitized)
    cm = match(SEED62, rec.info)
    by_name = match(SEED62, read_recording(eximia).info)
    assert {m: named[int(e[1:]) - 1] for m, e in cm.matched.items()} == by_name.matched
    assert list(cm.interpolated) == list(by_name.interpolated)
    assert "50 by digitized position, e.g. E1=FP1" in cm.summary("seed62")
    got, want = cm(rec.data()), by_name(read_recording(eximia).data())
    matched = [j for j, c in enumerate(SEED62) if c in cm.matched]
    np.testing.assert_allclose(got[:, matched], want[:, matched], rtol=1e-6)  # each read from its own electrode


@pytest.mark.parametrize("extra", [["Trig"], ["O1"]])
def test_a_stream_with_more_channels_than_the_model_reads_gives_the_model_only_its_own(extra):
    """Channels after the model's (a trigger, an unused electrode) are cut off, even when the model's come first."""
    kinds = ("EEG", "EEG", "STIM" if extra == ["Trig"] else "EEG")
    info = StreamInfo("amp", ["C3", "C4", *extra], 200.0, channel_types=kinds)
    data = np.arange(15, dtype=np.float32).reshape(5, 3)
    np.testing.assert_array_equal(match(["C3", "C4"], info)(data), data[:, :2])
