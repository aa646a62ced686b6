"""The viewer, offscreen: real Qt, real pipeline, real LSL; judged from the PNG it writes."""

import re

import numpy as np
import pytest

from bci_stream.devices.synthetic import LAYOUTS
from bci_stream.apps.viewer import LABEL_RGB, TRACE_RGB, minmax_decimate
from conftest import cli, cli_run


@pytest.fixture(autouse=True)
def offscreen(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")


def _pixels(path) -> np.ndarray:
    from PySide6.QtGui import QImage

    img = QImage(str(path))
    assert not img.isNull(), f"{path} is not an image"
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    # copied: the buffer belongs to the QImage, freed when this function returns
    return np.frombuffer(img.constBits(), np.uint8).reshape(h, stride)[:, : w * 3].reshape(h, w, 3).copy()


def _check_screenshot(path, stdout: str, layout: str) -> None:
    classes, channels = LAYOUTS[layout].classes, len(LAYOUTS[layout].channels)
    px = _pixels(path)
    h, w, _ = px.shape
    assert (w, h) == (1280, 800)
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 100, "the window is (nearly) blank"
    trace = (px == TRACE_RGB).all(axis=-1)
    rows, cols = np.nonzero(trace)
    assert trace.sum() > 20 * channels, "no EEG traces drawn"
    assert cols.max() < 0.75 * w and np.ptp(rows) > 0.5 * h, "traces are not where they belong"
    label = (px == LABEL_RGB).all(axis=-1)
    rows, cols = np.nonzero(label)
    assert label.sum() > 300, "no decoded label drawn"
    assert cols.min() > 0.65 * w and rows.max() < 0.2 * h, "the label is not in the top right corner"
    m = re.search(r"wrote .*: label '(\S+) +\d+%', (\d+) predictions, (\d+) channels", stdout)
    assert m, stdout
    assert m.group(1) in classes and int(m.group(2)) > 5 and int(m.group(3)) == channels


@pytest.mark.parametrize("n, bins", [(10_000, 400), (2_000, 420), (1_000, 300)])
def test_minmax_decimation_keeps_extremes_and_the_whole_span(rng, n, bins):
    x = rng.normal(size=(n, 3))
    x[n // 2, 1] = 50.0
    x[n - 1, 2] = -50.0
    pos, y = minmax_decimate(x, bins)
    assert len(pos) == len(y) <= 2 * bins and y.shape[1] == 3
    assert y[:, 1].max() == 50.0 and y[:, 2].min() == -50.0
    assert np.all(np.diff(pos) >= 0) and pos[-1] == n - 1
    assert pos[0] < n / bins  # less than one bin of the oldest samples is dropped


def test_view_runs_the_pipeline_in_process(tmp_path):
    png = tmp_path / "view.png"
    r = cli_run("view", "--source", "synthetic:seed62", "--duration", "4", "--screenshot", png, timeout=120)
    assert r.returncode == 0, r.stderr
    _check_screenshot(png, r.stdout, "seed62")


def test_view_attaches_to_a_pipeline_in_another_process(tmp_path, uid):
    png = tmp_path / "attach.png"
    sim = cli("simulate", "--layout", "deap32", "--name", uid, "--duration", "90")
    run = cli("run", "--source", f"lsl:name={uid}", "--name", f"{uid}-p", "--no-state", "-q", "--duration", "90")
    try:
        r = cli_run("view", "--attach", f"{uid}-p", "--timeout", "60", "--duration", "4", "--screenshot", png,
                    timeout=120)
    finally:
        for p in (run, sim):
            p.terminate()
            p.communicate(timeout=30)
    assert r.returncode == 0, r.stderr
    _check_screenshot(png, r.stdout, "deap32")


def test_view_attach_names_the_missing_stream(uid):
    r = cli_run("view", "--attach", uid, "--timeout", "0.5", "--duration", "1", timeout=60)
    assert r.returncode == 2
    assert f"no LSL stream named '{uid}-labels'" in r.stderr


def test_view_shows_an_artifact_as_such_not_as_a_class(tmp_path):
    """Storms on every channel: the run's artifact event reaches the window's status, and artifact windows are marked
    grey in the label strip (their probabilities are NaN; argmax alone made them the first class)."""
    png = tmp_path / "storm.png"
    r = cli_run("view", "--source", "synthetic:seed62?storms=20", "--duration", "8", "--screenshot", png, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"; (artifact under way \(reason=amplitude|clean again after \d+ artifact windows)", r.stdout), \
        r.stdout
    px = _pixels(png)
    grey = (px[int(0.75 * px.shape[0]) :] == (0xb4, 0xb4, 0xb4)).all(axis=-1)  # the history plot along the bottom
    # The strip's marks touch one another: a run of them 1 s of windows long, drawn in the one colour of unclassified.
    longest = max(np.diff(np.flatnonzero(np.diff(np.r_[0, row, 0]))).max(initial=0) for row in grey.astype(int))
    assert longest > 30, "no run of artifact marks in the label strip"


@pytest.mark.parametrize("marker, kind, text, fault", [
    ("event=stalled;idle_s=1.200", "stream", "stream stalled: no data for 1.200 s", True),
    ("event=resumed;gap_s=5.005;lost_samples=1000", "stream", "data again after 5.005 s; 1000 samples lost", False),
    ("event=gap;gap_s=-0.995;lost_samples=0", "timestamps", "timestamps broke by -0.995 s; 0 samples lost", False),
    ("event=rate;nominal=200;effective=150.00", "rate", "effective rate 150 Hz, nominal 200", True),
    ("event=rate;nominal=200;effective=200.10", "rate", "effective rate 200.1 Hz, nominal 200", False),
    ("event=clean;windows=12", "artifact", "clean again after 12 artifact windows", False),
    ("event=channels;bad=CZ;interpolated=CZ", "channels", "bad channels CZ; interpolated CZ", True),
    ("event=channels;bad=;interpolated=", "channels", "bad channels none; interpolated none", False),
    ("event=halted;bad=C1,C2", "channels", "decoding halted: too many bad channels (C1,C2)", True),
])
def test_view_states_each_fault_event_of_the_status_stream(marker, kind, text, fault):
    from bci_stream.apps.viewer import ViewState
    from bci_stream.control import parse_fields

    state = ViewState(None, ("a", "b"))
    state.on_status(**parse_fields(marker))
    assert state.snapshot()["health"] == {kind: (text, fault)}
