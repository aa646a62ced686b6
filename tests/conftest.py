import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, settings

from bci_stream.pipeline import Collect as Keep  # noqa: F401  (a sink that keeps what it is sent, for the tests)

# Mutation testing (scripts/mutation-test) needs to know that a property fails, not its smallest example.
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def uid():
    """A unique name for this test's LSL streams and source ids."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def cli(*args, **kw) -> subprocess.Popen:
    """Start ``bci-stream ARGS`` from this environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([str(BIN / "bci-stream"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def cli_run(*args, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([str(BIN / "bci-stream"), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture
def real_data_dir() -> Path:
    """The shared real 32-channel recording; absent -> skip, except under CI where it must be there."""
    d = Path(os.environ.get("BCI_STREAM_TEST_DATA", ROOT.parent / "shared" / "data" / "real"))
    if not (d / "eeglab_32ch_128hz.set").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real test data missing at {d} (CI must have ../shared/data/real)")
        pytest.skip(f"real test data not found at {d}; set BCI_STREAM_TEST_DATA")
    return d


def stop(*procs) -> None:
    """End ``bci-stream`` subprocesses started by a test, politely first."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


