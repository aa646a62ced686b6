import json
import tomllib

import pytest

from bci_stream import config
from bci_stream.quality import Thresholds
from conftest import ROOT, cli_run

GOOD = """
source = "synthetic:seed62"
participant = "P07"
session = "2"
window = 2
hop = 0.25
control = "lab-stratum"
model = "models/seed.pt"

[filters]
bandpass = [1.0, 40.0]
notch = "off"

[outputs]
name = "lab-a"
log = "logs/run.jsonl"
quiet = true

[quality]
line_ratio = 8.0
"""


def _write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_is_read_and_paths_are_relative_to_it(tmp_path):
    path = _write(tmp_path, GOOD)
    s = config.load(path)
    assert s[""]["source"] == "synthetic:seed62" and s[""]["window"] == 2 and s[""]["hop"] == 0.25
    assert s["filters"] == {"bandpass": [1.0, 40.0], "notch": "off"}
    assert s[""]["model"] == str(tmp_path / "models" / "seed.pt")
    assert s["outputs"]["log"] == str(tmp_path / "logs" / "run.jsonl")
    assert config.thresholds(config.effective(s, {})).line_ratio == 8.0


@pytest.mark.parametrize("text, message", [
    ('sorce = "synthetic:seed62"\n', r"unknown key 'sorce'; known: source"),
    ('[outputs]\nnme = "x"\n', r"\[outputs\] unknown key 'nme'; known: name, log, quiet"),
    ('[output]\nname = "x"\n', r"unknown table \[output\]"),
    ('window = "long"\n', r"window must be seconds > 0, got 'long'"),
    ('window = true\n', r"window must be seconds > 0, got True"),
    ('[filters]\nbandpass = [40, 1]\n', r"\[filters\] bandpass must be \[low, high\] in Hz or \"off\""),
    ('[quality]\nflat = 1\n', r"\[quality\] unknown key 'flat'"),
    ('source = \n', r"run.toml: "),
])
def test_bad_files_are_errors_naming_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(config.ConfigError, match=message) as e:
        config.load(path)
    assert str(path) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(config.ConfigError, match="no such file"):
        config.load(tmp_path / "nope.toml")


def test_flags_override_file_and_file_overrides_defaults(tmp_path):
    s = config.load(_write(tmp_path, GOOD))
    eff = config.effective(s, {"window": 0.5, "participant": None, "name": None, "device": None})
    assert eff[""]["window"] == 0.5  # flag
    assert eff[""]["participant"] == "P07"  # file
    assert eff[""]["device"] == "cpu"  # default
    assert eff["outputs"]["name"] == "lab-a"
    assert eff[""]["duration"] is None  # nowhere: unset


def test_written_toml_reads_back_the_same(tmp_path):
    s = config.effective(config.load(_write(tmp_path, GOOD)), {})
    s[""]["control"] = 'tricky "quotes" \\ and \u00e9 \x7f\n'
    text = config.dumps(s)
    tomllib.loads(text)  # valid TOML
    back = config.effective(config.load(_write(tmp_path, text, "again.toml")), {})
    assert back == s
    assert "# duration: not set (until interrupted)" in text


def test_print_config_shows_the_effective_settings(tmp_path):
    path = _write(tmp_path, GOOD)
    r = cli_run("run", "--config", path, "--window", "0.5", "--notch", "60", "--no-quiet", "--print-config", timeout=60)
    assert r.returncode == 0, r.stderr
    printed = tomllib.loads(r.stdout)
    assert printed["window"] == 0.5 and printed["participant"] == "P07" and printed["device"] == "cpu"
    assert printed["filters"] == {"bandpass": [1.0, 40.0], "notch": 60.0}
    assert printed["outputs"] == {"name": "lab-a", "log": str(tmp_path / "logs" / "run.jsonl"), "quiet": False}
    assert printed["quality"]["line_ratio"] == 8.0 and printed["quality"]["flat_uv"] == 0.5


def test_run_with_bad_config_exits_with_the_message(tmp_path):
    path = _write(tmp_path, 'source = "synthetic:seed62"\nwindw = 1\n')
    r = cli_run("run", "--config", path, timeout=60)
    assert r.returncode == 2
    assert f"config {path}: unknown key 'windw'" in r.stderr


def test_run_takes_its_settings_from_the_file(tmp_path, uid):
    path = _write(tmp_path, f"""
source = "synthetic:seed62?realtime=0"
participant = "P03"
session = "4"
duration = 3
no_state = true
[outputs]
name = "{uid}"
log = "preds.jsonl"
quiet = true
""")
    r = cli_run("run", "--config", path, "--session", "5", timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert len(lines) > 10
    assert {(p["participant"], p["session"]) for p in lines} == {("P03", "5")}
    assert r.stdout == ""  # quiet from the file


def test_the_readme_example_is_a_valid_config(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    s = config.load(_write(tmp_path, example))
    assert s[""]["control"] == "lab-stratum" and s["filters"]["notch"] == 60.0
    assert config.thresholds(config.effective(s, {})) == Thresholds()


def test_rename_table_merges_with_the_flag_and_feeds_the_channel_map(tmp_path, uid):
    """[rename] in the file, --rename on the command line (the flag wins for a label both rename)."""
    path = _write(tmp_path, f"""
source = "synthetic:seed62?realtime=0"
duration = 2
no_state = true
[outputs]
name = "{uid}"
quiet = true
[rename]
"FP1" = "Fp1"
"OZ" = "Oz"
""")
    r = cli_run("run", "--config", path, "--rename", "OZ=OZ,CZ=Cz", "--print-config", timeout=60)
    assert r.returncode == 0, r.stderr
    assert tomllib.loads(r.stdout)["rename"] == {"FP1": "Fp1", "OZ": "OZ", "CZ": "Cz"}
    r = cli_run("run", "--config", path, "--rename", "CZ=Cz", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "renamed: FP1=Fp1, OZ=Oz, CZ=Cz" in r.stderr
    bad = _write(tmp_path, '[rename]\n"FP1" = 3\n', "bad.toml")
    with pytest.raises(config.ConfigError, match=r"\[rename\] 'FP1' must be renamed to a channel name"):
        config.load(bad)
    r = cli_run("run", "--config", path, "--rename", "NOPE=Fp1", timeout=120)
    assert r.returncode == 2 and "--rename: stream 'synthetic-seed62' has no channel(s) ['NOPE']" in r.stderr
