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
