import numpy as np
import pytest

from bci_stream.batch import build_features
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.devices.synthetic import LAYOUTS, SyntheticEEG, SyntheticSource
from bci_stream.montages import DEAP32, SEED62
from bci_stream.sources import SourceError, open_source
from bci_stream.stratified import batch_zscore
from bci_stream.training import TrainSettings, fit, predict, stratum_ids


def test_layouts_have_dataset_channel_orders():
    assert SyntheticEEG("seed62").info.channel_names == tuple(SEED62)
    assert SyntheticEEG("deap32").info.srate == 128.0 and SyntheticEEG("deap32").info.channel_names == tuple(DEAP32)
    assert SyntheticEEG("seed62", srate=1000).info.srate == 1000.0


def test_same_seed_same_bytes_whatever_the_block_size():
    a, ca = SyntheticEEG("seed62", participant=3, session=2, seed=7).generate(2000)
    g = SyntheticEEG("seed62", participant=3, session=2, seed=7)
    parts = [g.next_block(k)[0] for k in (1, 7, 992, 1000)]
    np.testing.assert_array_equal(a, np.concatenate(parts))
    b, _ = SyntheticEEG("seed62", participant=3, session=2, seed=8).generate(2000)
    assert not np.array_equal(a, b)
    assert a.dtype == np.float32 and 5 < a.std() < 100  # microvolt scale


def test_participants_differ_more_than_emotions():
    """Between-person spread of band power exceeds the emotion effect: the reason for stratified normalization."""
    from bci_stream.plugins.features import differential_entropy

    means = {}
    for p in (1, 2):
        g = SyntheticEEG("seed62", participant=p, session=1, trial_seconds=10, blinks=False, muscle=False)
        x, cls = g.generate(200 * 60)
        w = x[: len(x) // 200 * 200].reshape(-1, 200, 62).transpose(0, 2, 1)
        f = differential_entropy.compute(w, 200.0)
        lab = cls[199::200]
        means[p] = np.stack([f[lab == k].mean(0) for k in range(3)])
    person = np.abs(means[1] - means[2]).mean()
    emotion = np.abs(means[1][2] - means[1][0]).mean()
    assert person > emotion > 0.05


def test_cross_participant_model_needs_per_session_normalization():
    trials = synthetic_trials("seed62", range(1, 7), (1,), trials=6, trial_seconds=10, blinks=False, muscle=False)
    fset = build_features(trials, 36, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    test = np.isin(fset.participant, ["1", "2"])
    strata = stratum_ids(fset.participant, fset.session)
    strat = batch_zscore(fset.X, strata, 1e-8)
    glob = (fset.X - fset.X[~test].mean(0)) / fset.X[~test].std(0)
    acc = {}
    for name, X in (("stratified", strat), ("global", glob)):
        m, _ = fit(X[~test], fset.y[~test], strata[~test], 3, TrainSettings(norm="none", epochs=60, quiet=True))
        acc[name] = float((predict(m, X[test], strata[test]) == fset.y[test]).mean())
    assert acc["stratified"] > 0.8
    assert acc["stratified"] - acc["global"] > 0.2, acc


def test_source_spec_options_and_errors():
    src = open_source("synthetic:deap32?participant=4&session=2&seed=3&realtime=0&line=60")
    assert isinstance(src, SyntheticSource) and not src.realtime
    assert src.gen.participant == "4" and src.gen.line_noise == 60.0
    chunk = next(src.chunks())
    assert chunk.data.shape[1] == 32 and np.all(np.diff(chunk.timestamps) > 0)
    with pytest.raises(SourceError, match="unknown synthetic layout 'seed63'"):
        open_source("synthetic:seed63")
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['colour'\]"):
        open_source("synthetic:seed62?colour=red")


def test_realtime_pacing_stamps_samples_when_they_exist():
    import pylsl

    src = SyntheticSource("seed62", realtime=True)
    got = []
    for chunk in src.chunks():
        got.append((pylsl.local_clock(), chunk.timestamps[-1]))
        if len(got) == 25:
            break
    lag = np.array([now - ts for now, ts in got])
    assert np.all(lag > -1e-3) and np.median(lag) < 0.005  # released when its last sample exists


# --- difficulty knobs -------------------------------------------------------------------------------

QUIET = dict(blinks=False, muscle=False, line_noise=None)
EDGES = [(1, 4), (4, 8), (8, 14), (14, 31), (31, 50)]
#: sha256 of SyntheticEEG("seed62", participant=3, session=2, seed=7, trial_seconds=2).generate(1000)[0] as
#: the generator gave it before the knobs (commit b9715f5); bundled models were trained on those bytes.
EASY_SHA256 = "75a73f66a143108a8e8dcb4233efa90c3455df109275984fb988abe7c3cb6429"


def log_band_power(x, srate=200.0):
    """log power per (band, channel) of the whole array, from its FFT."""
    f = np.fft.rfftfreq(len(x), 1 / srate)
    p = np.abs(np.fft.rfft(x, axis=0)) ** 2
    return np.log(np.stack([p[(f >= lo) & (f < hi)].sum(0) for lo, hi in EDGES]))


def rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


@pytest.mark.parametrize("off", [{}, {"difficulty": "easy"}, {"effect": 1.0}, {"person_pattern": 0}, {"drift": 0},
                                 {"session_scale": 1}, {"clip_variation": 0}, {"clip_arousal": 0}, {"spread": 1},
                                 {"artifact_rate": 1}, {"muscle_uv": 60}, {"responsiveness": 0},
                                 {"trait_valence": 0}, {"person_scale": 1}, {"ceiling": 0},
                                 {"shared_arousal": 0}])
def test_each_knob_off_gives_the_easy_bytes(off):
    import hashlib

    x, _ = SyntheticEEG("seed62", participant=3, session=2, seed=7, trial_seconds=2, **off).generate(1000)
    assert hashlib.sha256(x.tobytes()).hexdigest() == EASY_SHA256


def test_every_knob_on_still_independent_of_block_size_and_changes_the_bytes():
    kw = dict(participant=3, session=2, seed=7, trial_seconds=3, difficulty="seed", drift=0.3)
    a, ca = SyntheticEEG("seed62", **kw).generate(2600)
    g = SyntheticEEG("seed62", **kw)
    parts = [g.next_block(k) for k in (1, 7, 199, 201, 592, 600, 1000)]  # across knots and trials
    np.testing.assert_array_equal(a, np.concatenate([p[0] for p in parts]))
    np.testing.assert_array_equal(ca, np.concatenate([p[1] for p in parts]))
    easy, _ = SyntheticEEG("seed62", participant=3, session=2, seed=7, trial_seconds=3).generate(2600)
    assert not np.array_equal(a, easy)


def test_drift_moves_band_power_by_the_set_amount_per_root_minute():
    """A random walk of SD d per sqrt(minute): the mean log amplitude of the first and last minute of a T-minute
    session differ by SD d * sqrt(T - 4/3) (Brownian motion averaged over each minute), log power by twice that.
    The same seed without drift gives the same noise, so the ratio of the two leaves only the drift."""
    T, d, m = 8, 0.1, 200 * 60
    ratios = []
    for p in (1, 2, 3):
        flat, _ = SyntheticEEG(participant=p, trial_seconds=T * 60, schedule=[1], **QUIET).generate(T * m)
        walk, _ = SyntheticEEG(participant=p, trial_seconds=T * 60, schedule=[1], drift=d, **QUIET).generate(T * m)
        first = log_band_power(walk[:m]) - log_band_power(flat[:m])
        last = log_band_power(walk[-m:]) - log_band_power(flat[-m:])
        assert rms(first) < rms(last)  # it starts from the session's own amplitudes
        ratios.append(rms(last - first) / (2 * d * np.sqrt(T - 4 / 3)))
    # Somewhat under 1: the 1/f background does not drift and dilutes each band's power.
    assert 0.6 < np.mean(ratios) < 1.1, ratios


def test_person_pattern_gives_each_person_own_class_contrasts():
    """The positive - negative contrast of log band power: scaled copies of one pattern without the knob,
    personal with it, by about person_pattern x the RMS of the shared pattern (per unit of valence, both axes)."""
    from bci_stream.devices.synthetic import emotion_pattern

    def contrast(p, **kw):
        g = SyntheticEEG(participant=p, trial_seconds=30, schedule=[0, 2], **QUIET, **kw)
        x, cls = g.generate(200 * 30 * 8)
        lp = np.stack([log_band_power(t) for t in x.reshape(8, -1, 62)])
        return lp[cls[:: 200 * 30] == 2].mean(0) - lp[cls[:: 200 * 30] == 0].mean(0)  # [bands, C]

    shared = {p: contrast(p) for p in (1, 2, 3)}
    own = {p: contrast(p, person_pattern=1.0) for p in (1, 2, 3)}
    assert np.corrcoef(shared[1].ravel(), shared[2].ravel())[0, 1] > 0.9
    assert np.corrcoef(own[1].ravel(), own[2].ravel())[0, 1] < np.corrcoef(shared[1].ravel(), shared[2].ravel())[0, 1] - 0.2
    pat = emotion_pattern(SEED62)
    # Positive - negative is 2 x the valence row; the person's part adds 2 x person_pattern x RMS(pattern) of
    # noise. Band by band, since leakage and the 1/f background dilute the bands unequally.
    ratio = [rms(own[p][b] - shared[p][b]) / rms(shared[p][b]) / (rms(pat) / rms(pat[0, b]))
             for p in own for b in range(len(EDGES))]
    assert 0.75 < np.median(ratio) < 1.3, ratio


def test_session_scale_sets_how_far_two_sessions_of_one_person_differ():
    """Session draws per session: gains SD 0.05 (channel), offsets 0.06 (band) + 0.05 (band x channel), all x scale:
    two sessions' log power differs by RMS 2 * scale * sqrt(2 * (0.05^2 + 0.06^2 + 0.05^2))."""
    def spread(scale):
        out = []
        for p in (1, 2, 3, 4):
            a, b = (SyntheticEEG(participant=p, session=s, trial_seconds=120, schedule=[1], session_scale=scale,
                                 **QUIET).generate(200 * 120)[0] for s in (1, 2))
            out.append(np.mean(np.square(log_band_power(a) - log_band_power(b))))
        return np.mean(out)

    noise, scale = spread(0.0), 3.0
    expected = 2 * scale * np.sqrt(2 * (0.05 ** 2 + 0.06 ** 2 + 0.05 ** 2))
    assert 0.75 < np.sqrt(spread(scale) - noise) / expected < 1.1  # 0.90: the 1/f background dilutes


def test_person_scale_sets_how_far_two_people_differ():
    """Person draws: gains SD 0.35 (channel), offsets 0.5 (band) + 0.25 (band x channel), all x scale: two people's
    log power differs by RMS 2 * scale * sqrt(2 * (0.35^2 + 0.5^2 + 0.25^2)) beyond what differs at scale 0 (their
    alpha frequency, pattern size, noise)."""
    def spread(scale):
        out = []
        for p in (1, 3, 5):
            a, b = (SyntheticEEG(participant=q, trial_seconds=60, schedule=[1], person_scale=scale,
                                 **QUIET).generate(200 * 60)[0] for q in (p, p + 1))
            out.append(np.mean(np.square(log_band_power(a) - log_band_power(b))))
        return np.mean(out)

    noise, scale = spread(0.0), 0.5
    expected = 2 * scale * np.sqrt(2 * (0.35 ** 2 + 0.5 ** 2 + 0.25 ** 2))
    assert 0.75 < np.sqrt(spread(scale) - noise) / expected < 1.1


def test_clip_variation_makes_clips_of_one_class_differ():
    """Two clips of one class in one session differ in log power by RMS 2 * sqrt(2) * v * RMS(shared pattern)."""
    from bci_stream.devices.synthetic import emotion_pattern

    def clip_spread(v):
        out = []
        for p in (1, 2):
            g = SyntheticEEG(participant=p, trial_seconds=60, schedule=[1], clip_variation=v, **QUIET)
            x, _ = g.generate(200 * 60 * 4)
            lp = [log_band_power(t) for t in x.reshape(4, -1, 62)]
            out += [np.mean(np.square(lp[i] - lp[i + 1])) for i in range(3)]
        return np.mean(out)

    # The pattern's own size differs by person (x uniform 0.8-1.2): 1 on average.
    unit, v = np.sqrt(np.mean(emotion_pattern(SEED62) ** 2)), 1.0
    assert 0.6 < np.sqrt(clip_spread(v) - clip_spread(0.0)) / (2 * np.sqrt(2) * v * unit) < 1.3


def test_spread_scales_the_departures_between_classes_people_and_sessions():
    """Same noise draws, spread 0.5 against 1: each log band power difference (positive - negative clip of one
    person; person 1 - person 2; session 1 - session 2, each a same-class clip) halves, fitted over bands x
    channels by least squares (numpy on the EEG). The drift, strong here, halves too."""
    def lp(s, p, session=1):
        x, _ = SyntheticEEG(participant=p, session=session, trial_seconds=60, schedule=[0, 2], spread=s,
                            session_scale=4.0, drift=1.0, **QUIET).generate(200 * 120)
        return log_band_power(x[: 200 * 60]), log_band_power(x[200 * 60 :])
    for pair in (lambda s: lp(s, 1)[1] - lp(s, 1)[0], lambda s: lp(s, 1)[0] - lp(s, 2)[0],
                 lambda s: lp(s, 1)[0] - lp(s, 1, session=2)[0]):
        full, half = pair(1.0).ravel(), pair(0.5).ravel()
        assert 0.4 < np.dot(full, half) / np.dot(full, full) < 0.55


def test_the_seed_preset_stays_at_a_headsets_microvolts():
    """Before: spread 1, and the preset's band amplitudes walked 10-100x beyond EEG's (median RMS 226-1559 uV), so
    the live path's amplitude rule (150 uV on half the channels) took 60 % of its windows for artifacts."""
    from scipy import signal

    sos = signal.butter(4, (1, 40), "bandpass", fs=200, output="sos")
    x, _ = SyntheticEEG(participant=1, seed=2, difficulty="seed", trial_seconds=60).generate(200 * 60 * 15)
    x = signal.sosfilt(sos, x.astype(float), axis=0)[400:]
    windows = np.abs(x[: len(x) // 200 * 200].reshape(-1, 200, x.shape[1])).max(axis=1)
    assert ((windows > 150).mean(axis=1) >= 0.5).sum() == 0
    assert np.median(np.sqrt(np.mean(x**2, axis=0))) < 40


def test_ceiling_caps_each_bands_amplitude_in_microvolts():
    """People's own patterns 8x the shared one's RMS: some bands reach hundreds of microvolts, and a 10-uV ceiling
    holds every band's RMS (from the FFT, Parseval) near 10 uV: 4 s of a band fluctuate, and bands spill a little
    into their neighbours' bins, with a pink background on top."""
    def band_rms(ceiling):
        out = []
        for p in range(1, 5):
            x, _ = SyntheticEEG(participant=p, trial_seconds=4, person_pattern=8.0, ceiling=ceiling,
                                **QUIET).generate(200 * 12)
            for clip in x.reshape(3, -1, 62).astype(float):
                f = np.fft.rfftfreq(len(clip), 1 / 200)
                power = 2 * np.abs(np.fft.rfft(clip, axis=0)) ** 2 / len(clip) ** 2
                out.append([np.sqrt(power[(f >= lo) & (f < hi)].sum(0)) for lo, hi in EDGES])
        return np.array(out)

    assert band_rms(0).max() > 100
    capped = band_rms(10.0)
    assert capped.max() < 15 and np.percentile(capped, 99) > 6


def test_the_seed_presets_loudest_channels_stay_near_a_real_recordings(real_data_dir):
    """12 people x 3 sessions x 15 clips: per-channel 1-s RMS (1-40 Hz) against the real 32-channel recording's,
    which has its own blinks while these have none. Before ``ceiling`` the preset's person patterns and clip
    variation (log-amplitude SD about 0.8 per band x channel) had lognormal tails: 99th percentile 157 uV, loudest
    second 1429 uV. Drift is raised sqrt(60)-fold so that one minute walks as far as a 60-min session does."""
    import mne
    from scipy import signal

    def one_second_rms(x, srate):
        x = signal.sosfilt(signal.butter(4, (1, 40), "bandpass", fs=srate, output="sos"), x, axis=0)[round(srate):]
        n = round(srate)
        return np.sqrt(np.mean(x[: len(x) // n * n].reshape(-1, n, x.shape[1]) ** 2, axis=1)).ravel()

    raw = mne.io.read_raw(real_data_dir / "eeglab_32ch_128hz.set", preload=True, verbose="error")
    real = one_second_rms(raw.get_data(picks="eeg").T * 1e6, raw.info["sfreq"])
    drift = SyntheticEEG(difficulty="seed").knobs["drift"] * np.sqrt(60)
    ours = np.concatenate([
        one_second_rms(SyntheticEEG(participant=p, session=s, seed=1, difficulty="seed", drift=drift, trial_seconds=4,
                                    **QUIET).generate(200 * 4 * 15)[0].astype(float), 200.0)
        for p in range(1, 13) for s in (1, 2, 3)])
    assert 0.5 < np.median(ours) / np.median(real) < 2
    assert np.percentile(ours, 99) < 2 * np.percentile(real, 99)
    assert ours.max() < 2 * real.max()


def test_artifact_rate_sets_how_often_blinks_and_muscle_bursts_come():
    """Counted on the EEG over 15 minutes (scipy, the 32-channel layout for speed): blinks as Fp1's 0.5-4 Hz swings
    past 50 uV (its 99th percentile without them is 8 uV), muscle bursts as stretches where T7's 25-55 Hz power
    is 10x its median. At 1, 15 blinks and 3 bursts a minute (Poisson draws, and blinks that overlap count once); at
    0.5 about half as many; at 0 none."""
    from scipy import signal

    def count(rate):
        g = SyntheticEEG("deap32", participant=1, seed=4, effect=0.0, line_noise=None, artifact_rate=rate)
        x, _ = g.generate(128 * 60 * 15)
        fp1, t7 = x[:, DEAP32.index("FP1")].astype(float), x[:, DEAP32.index("T7")].astype(float)
        slow = signal.sosfiltfilt(signal.butter(2, (0.5, 4), "bandpass", fs=128, output="sos"), fp1)
        fast = signal.sosfiltfilt(signal.butter(4, (25, 55), "bandpass", fs=128, output="sos"), t7)
        power = np.convolve(fast**2, np.ones(64) / 64, "same")
        crossings = lambda above: int(np.sum(np.diff(above.astype(int)) == 1))
        return crossings(slow > 50), crossings(power > 10 * np.median(power))

    (b1, m1), (b_half, m_half), (b0, m0) = count(1.0), count(0.5), count(0.0)
    assert 15 * 15 * 0.6 < b1 < 15 * 15 * 1.2 and 3 * 15 * 0.5 < m1 < 3 * 15 * 1.4, (b1, m1)
    assert 0.35 < b_half / b1 < 0.65 and 0.25 < m_half / m1 < 0.75, (b_half, m_half)
    assert b0 == 0 and m0 == 0


def test_muscle_uv_sets_the_size_of_muscle_bursts():
    """Same draws, bursts of 0, 30 and 60 uV: the 60-uV EEG departs from the burst-free one by exactly twice what the
    30-uV one does, over a minute with bursts at the temporal channels; without bursts the knob changes nothing."""
    def eeg(uv, **kw):
        return SyntheticEEG(participant=2, seed=5, blinks=False, line_noise=None, muscle_uv=uv, **kw).generate(200 * 60)[0]

    x0, x30, x60 = (eeg(uv).astype(float) for uv in (0.0, 30.0, 60.0))
    burst = x60 - x0
    t7 = SEED62.index("T7")
    assert np.sqrt(np.mean(burst[:, t7] ** 2)) > 3  # 3 bursts a minute of 30-90 uV RMS, over a second each
    np.testing.assert_allclose(burst, 2 * (x30 - x0), atol=1e-3)
    np.testing.assert_array_equal(eeg(0.0, muscle=False), eeg(60.0, muscle=False))


def session_log_power(p, session=1, effect=3.0, **kw):
    """Log band power of one negative and one positive 20-s clip of person ``p``: [2 classes, bands, C]."""
    x, _ = SyntheticEEG(participant=p, session=session, trial_seconds=20, schedule=[0, 2], effect=effect, **QUIET,
                        **kw).generate(200 * 40)
    return np.stack([log_band_power(x[:4000]), log_band_power(x[4000:])])


def slope(y, x):
    """Least-squares slope of y on x through the origin, over every band and channel."""
    return float(np.sum(x * y) / np.sum(x * x))


def test_responsiveness_scales_each_persons_emotion_contrast_by_a_lognormal_factor():
    """The positive - negative contrast of log power with responsiveness s against the same noise without: one
    factor per person, the same in both sessions, whose log has SD about s over people."""
    def contrast(lp):
        return lp[1] - lp[0]

    logs = []
    for p in range(1, 9):
        k = [slope(contrast(session_log_power(p, s, responsiveness=0.5)), contrast(session_log_power(p, s)))
             for s in (1, 2)]
        assert k[0] == pytest.approx(k[1], rel=0.1), (p, k)
        logs.append(np.log(k[0]))
    assert 0.25 < np.std(logs, ddof=1) < 0.8, logs  # 8 draws of N(0, 0.5^2)


def test_trait_valence_shifts_a_person_along_their_own_valence_axis_in_every_session_and_class():
    """Each class's log amplitudes (the generator's table, before noise) with trait_valence t minus without: in every
    class and session one multiple of the person's own half positive - negative contrast (one unit of valence), the
    multiple standard normal x t over people. And it reaches the EEG: log band power moves along that contrast."""
    def log_amp(p, s, **kw):
        return np.log(SyntheticEEG(participant=p, session=s, person_pattern=1.0, **QUIET, **kw)._amp)

    units = []
    for p in range(1, 9):
        base = log_amp(p, 1)
        half = (base[2] - base[0]) / 2
        unit = slope(log_amp(p, 1, trait_valence=0.5)[0] - base[0], half)
        for s in (1, 2):
            shift = log_amp(p, s, trait_valence=0.5) - log_amp(p, s)
            np.testing.assert_allclose(shift, unit * np.broadcast_to(half, shift.shape), atol=1e-9)
        units.append(unit)
    assert 0.25 < np.std(units, ddof=1) < 0.8, units  # 8 draws of N(0, 0.5^2)
    for p in (1, 2):
        lp = session_log_power(p, effect=1.0)
        shift = session_log_power(p, effect=1.0, trait_valence=0.5)[0] - lp[0]
        assert abs(np.corrcoef(shift.ravel(), (lp[1] - lp[0]).ravel())[0, 1]) > 0.9


def test_clip_arousal_sets_neutral_apart_off_the_valence_axis():
    """Negative and positive clips both rise by clip_arousal units of the arousal pattern less its projection on the
    valence pattern (numpy on the whole [bands, C] arrays): their midpoint's log band power minus neutral's moves by
    2 x clip_arousal x that (the same noise without). Delta's rise is 1.8 x the arousal row's."""
    from bci_stream.devices.synthetic import emotion_pattern

    def class_means(p, **kw):
        g = SyntheticEEG(participant=p, trial_seconds=30, schedule=[0, 1, 2], **QUIET, **kw)
        x, cls = g.generate(200 * 30 * 9)
        lp = np.stack([log_band_power(t) for t in x.reshape(9, -1, 62)])
        return [lp[cls[:: 200 * 30] == k].mean(0) for k in range(3)]

    val, aro = emotion_pattern(SEED62)
    rise = aro - np.sum(aro * val) / np.sum(val * val) * val
    for p in (1, 2, 3):
        neg, neu, pos = class_means(p, clip_arousal=1.0)
        neg0, neu0, pos0 = class_means(p)
        change = (neg + pos) / 2 - neu - ((neg0 + pos0) / 2 - neu0)
        # Delta and alpha, whose change varies over the scalp; theta and gamma take in their neighbours' change
        # through the filters' skirts.
        for b in (0, 2):
            assert np.corrcoef(change[b], rise[b])[0, 1] > 0.9
            assert 0.6 < rms(change[b]) / (2 * rms(rise[b])) < 1.3  # x the person's 0.8-1.2, diluted by 1/f
    # Without an emotion pattern there is nothing to rise along (and no valence pattern to project on).
    flat = [SyntheticEEG(effect=0.0, clip_arousal=a, **QUIET).generate(200)[0] for a in (0.0, 1.0)]
    np.testing.assert_array_equal(*flat)


def test_shared_arousal_sets_neutral_apart_the_same_way_in_every_person():
    """The emotional classes' midpoint minus neutral in the generator's log-amplitude table (before noise), with a
    knob at 1 minus without: shared_arousal's is the shared arousal pattern (emotion_pattern's row, times the person's
    0.8-1.2) less its projection on the person's own valence pattern, nearly the same in every person;
    clip_arousal's, along each person's whole arousal pattern, mostly their own when person_pattern is large."""
    from bci_stream.devices.synthetic import emotion_pattern

    def table(p, **kw):
        return np.log(SyntheticEEG(participant=p, person_pattern=2.0, **QUIET, **kw)._amp)

    def apart(t):
        return (t[0] + t[2]) / 2 - t[1]

    aro = emotion_pattern(SEED62)[1]
    shared_rises, own_rises = [], []
    for p in range(1, 7):
        base = table(p)
        val = (base[2] - base[0]) / 2  # the person's valence pattern (one unit)
        expect = aro - np.sum(aro * val) / np.sum(val * val) * val
        rise = apart(table(p, shared_arousal=1.0)) - apart(base)
        k = slope(rise, expect)
        assert 0.8 <= k <= 1.2, (p, k)
        np.testing.assert_allclose(rise, k * expect, atol=1e-9)
        shared_rises.append(rise.ravel())
        own_rises.append((apart(table(p, clip_arousal=1.0)) - apart(base)).ravel())
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    assert min(np.corrcoef(shared_rises[i], shared_rises[j])[0, 1] for i, j in pairs) > 0.8
    assert np.mean([abs(np.corrcoef(own_rises[i], own_rises[j])[0, 1]) for i, j in pairs]) < 0.4


def test_knobs_from_the_source_spec_and_their_errors():
    from bci_stream.devices.synthetic import DIFFICULTY

    src = open_source("synthetic:seed62?difficulty=seed&drift=0.2&realtime=0")
    assert src.gen.knobs == {**DIFFICULTY["seed"], "drift": 0.2}
    assert SyntheticEEG("seed62").knobs == DIFFICULTY["easy"]
    with pytest.raises(SourceError, match="unknown synthetic difficulty 'hard'; known: easy, seed"):
        open_source("synthetic:seed62?difficulty=hard")
    with pytest.raises(SourceError, match="synthetic drift must be a number >= 0, got -0.1"):
        open_source("synthetic:seed62?drift=-0.1")
    with pytest.raises(SourceError, match="synthetic clip_variation must be a number >= 0, got nan"):
        SyntheticEEG("seed62", clip_variation=float("nan"))


@pytest.mark.parametrize("option", ["storms=abc", "drift=x", "seed=1.5", "trial=", "srate=fast"])
def test_a_synthetic_option_that_is_no_number_is_named(option):
    """Before: Python's bare "could not convert string to float: 'abc'", naming neither source nor option."""
    with pytest.raises(SourceError) as e:
        SyntheticSource.from_spec(f"seed62?{option}")
    key, value = option.split("=")
    assert str(e.value) == f"synthetic source 'seed62?{option}': {key}={value!r}: expected a number"


def test_synthesize_in_parallel_writes_what_one_process_writes(tmp_path):
    """Benchmarks generate their data with --jobs and cache it by its settings alone, so the files must not depend
    on how many processes wrote them."""
    import scipy.io

    from bci_stream.datasets.synthetic import write_seed_folder

    one = write_seed_folder(tmp_path / "one", participants=2, sessions=2, trial_seconds=1, difficulty="seed")
    two = write_seed_folder(tmp_path / "two", participants=2, sessions=2, trial_seconds=1, difficulty="seed", jobs=2)
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in two.iterdir()) == [
        "1_20260101.mat", "1_20260102.mat", "2_20260101.mat", "2_20260102.mat", "label.mat"]
    for name in names:
        a, b = scipy.io.loadmat(one / name), scipy.io.loadmat(two / name)
        keys = sorted(k for k in a if not k.startswith("__"))
        assert keys == sorted(k for k in b if not k.startswith("__"))
        for k in keys:
            np.testing.assert_array_equal(a[k], b[k])
    # Every session differs from every other: a parallel write that handed one session's data to all would pass above
    # only if the serial one did the same.
    first = [scipy.io.loadmat(one / n)[f"p{int(n.split('_')[0]):02d}_eeg1"] for n in names[:4]]
    assert all(not np.array_equal(first[i], first[j]) for i in range(4) for j in range(i + 1, 4))


def test_an_interrupted_synthesize_leaves_a_folder_the_seed_reader_refuses(tmp_path):
    """Benchmarks reuse a generated folder when it reads as SEED; one cut short (a killed run) must not."""
    import scipy.io

    from bci_stream import registry
    from bci_stream.datasets.synthetic import write_seed_folder

    class Killed(Exception):
        pass

    class KillAfterFirstSession:
        def update(self, k=1, note=""):
            raise Killed

    folder = tmp_path / "SEED"
    with pytest.raises(Killed):
        write_seed_folder(folder, participants=2, sessions=1, trial_seconds=1, progress=KillAfterFirstSession())
    assert sorted(p.name for p in folder.iterdir()) == ["1_20260101.mat"]  # no label.mat, no temporary file
    with pytest.raises(FileNotFoundError, match="label.mat"):
        list(registry.load_dataset("seed")(folder).trials())

    write_seed_folder(folder, participants=2, sessions=1, trial_seconds=1)
    labels = scipy.io.loadmat(folder / "label.mat")["label"].ravel().tolist()
    assert labels == [1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1]  # SEED's film order
    assert sorted({t.participant for t in registry.load_dataset("seed")(folder).trials()}) == ["1", "2"]
