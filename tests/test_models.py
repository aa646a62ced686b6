import numpy as np
import pytest
import torch

from bci_stream.batch import FeatureSet
from bci_stream.plugins.models import DeapCNN, DeapDNN, FeatureNet
from bci_stream.stratified import LiveStrata, Prior, Strata, StratifiedNorm, StratifiedNormalizer, batch_zscore, causal_zscore
from bci_stream.training import LiveOrder, TrainSettings, fit, stratum_ids


def test_batch_stratified_zscore_uses_each_strata_rows(rng):
    x = torch.tensor(rng.normal(size=(40, 3)), dtype=torch.float64)
    strata = torch.tensor(rng.integers(0, 3, 40))
    z = batch_zscore(x, strata, eps=0)
    for s in range(3):
        rows = x[strata == s]
        torch.testing.assert_close(z[strata == s], (rows - rows.mean(0)) / rows.std(0, unbiased=False))


def _weights(net):
    return [(lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()) for lin in net.linears]


def _leaky(h):
    return np.where(h > 0, h, 0.01 * h)


def test_offline_layers_normalize_each_whole_stratum(rng):
    torch.manual_seed(0)
    net = FeatureNet(20, 3, hidden=(16, 8), norm="stratified").eval()
    x = rng.normal(2, 3, (120, 20))
    strata = np.repeat([0, 1, 0, 1], 30)
    # Reference by hand: each block's activations z-scored with the mean and variance of its stratum's rows.
    h = x
    for w, b in _weights(net):
        h = _leaky(h @ w.T + b)
        for s in (0, 1):
            rows = h[strata == s]
            h[strata == s] = (rows - rows.mean(0)) / np.sqrt(rows.var(0) + 1e-5)
    w, b = net.out.weight.detach().double().numpy(), net.out.bias.detach().double().numpy()
    with torch.no_grad():
        got = net(torch.tensor(x, dtype=torch.float32), torch.tensor(strata)).double().numpy()
    np.testing.assert_allclose(got, h @ w.T + b, rtol=1e-4, atol=1e-4)


def test_online_layers_z_score_by_running_statistics_of_what_reaches_them(rng):
    """Live, each block z-scores a window by the statistics of every window of the stratum so far, itself
    included, of what reached that block live. Only the first block's inputs do not depend on
    normalization, so only there does a whole session give the batch statistics."""
    torch.manual_seed(0)
    net = FeatureNet(20, 3, hidden=(16, 8), norm="stratified").eval()
    x = rng.normal(2, 3, (300, 20))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    strata = Strata("P1", "1")
    net.start_online(strata, prior_weight=0)
    with torch.inference_mode():
        got = np.concatenate([net(torch.tensor(row[None], dtype=torch.float32)).double().numpy() for row in x])
    # Reference by hand: the same blocks, each normalized by the cumulative mean and variance of its inputs.
    h, reached = x, []
    for w, b in _weights(net):
        h = _leaky(h @ w.T + b)
        reached.append(h)
        n = np.arange(1, len(h) + 1)[:, None]
        mean = np.cumsum(h, 0) / n
        var = np.cumsum(h * h, 0) / n - mean ** 2
        h = (h - mean) / np.sqrt(np.maximum(var, 0) + 1e-5)
    w, b = net.out.weight.detach().double().numpy(), net.out.bias.detach().double().numpy()
    np.testing.assert_allclose(got, h @ w.T + b, rtol=1e-3, atol=1e-3)
    for i, inputs in enumerate(reached):
        s = strata.stats(which=i)
        assert s.count == 300
        np.testing.assert_allclose(s.mean, inputs.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s.var, inputs.var(0), rtol=1e-4, atol=1e-5)
    # The first block's inputs are the same online and offline: there, a whole session gives the batch statistics.
    first = _leaky(x @ _weights(net)[0][0].T + _weights(net)[0][1])
    np.testing.assert_allclose(strata.stats().var, first.var(0), rtol=1e-4)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed at inference"


def test_causal_zscore_is_what_the_live_normalizer_gives(rng):
    # Two strata back to back, each from its own prior, as a live session sees its windows.
    x = rng.normal(3, 2, (70, 5))
    start = torch.tensor([0] * 30 + [30] * 40)
    mean, var = rng.normal(size=5), rng.uniform(0.5, 2, 5)
    z = causal_zscore(torch.tensor(x), start, torch.tensor(mean), torch.tensor(var), 12.0, 1e-8)
    live = StratifiedNormalizer(5, Prior(mean, var, 12.0))
    expected = np.concatenate([live.update_transform(("P", "1"), x[:30]), live.update_transform(("P", "2"), x[30:])])
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-5, atol=1e-5)

def test_causal_zscore_gradient_is_that_of_the_row_by_row_formula(rng):
    # Training's live pass back-propagates through causal z-scores by a hand-written gradient; it must be the gradient
    # of the statistics as written here, one row at a time: the rows so far pooled with w prior pseudo-rows.
    x = torch.tensor(rng.normal(1, 2, (45, 3)))
    start = torch.tensor([0] * 12 + [12] * 25 + [37] * 8)
    pm, pv, w, eps = torch.tensor(rng.normal(size=3)), torch.tensor(rng.uniform(0.5, 2, 3)), 7.0, 1e-5
    weights = torch.tensor(rng.normal(size=(45, 3)))

    def by_rows(v):
        out = []
        for k in range(len(v)):
            seen = v[int(start[k]) : k + 1]
            n = len(seen) + w
            mean = (seen.sum(0) + w * pm) / n
            var = (((seen - mean) ** 2).sum(0) + w * (pv + (pm - mean) ** 2)) / n
            out.append((v[k] - mean) / (var + eps).sqrt())
        return torch.stack(out)

    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    (causal_zscore(a, start, pm, pv, w, eps) * weights).sum().backward()
    (by_rows(b) * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9)
    assert torch.autograd.gradcheck(lambda v: causal_zscore(v, start, pm, pv, w, eps), (x.clone().requires_grad_(),))



def _sessions(rng, participants=3, sessions=2, trials=3, windows=5):
    """A feature set of participants x sessions x trials, each trial a run of windows with its own offset."""
    n = participants * sessions * trials * windows
    idx = np.indices((participants, sessions, trials, windows)).reshape(4, -1)
    X = rng.normal(size=(n, 4)) + idx[0][:, None] + 0.3 * idx[2][:, None]
    return FeatureSet(X=X, y=idx[2] % 2, participant=(idx[0] + 1).astype(str), session=(idx[1] + 1).astype(str),
                      class_names=("a", "b"), channels=("C1",), srate=100.0, features="de", window=1.0, hop=0.5,
                      trial=idx[2] + 1)


def test_live_order_replays_sessions_as_the_live_normalizer_would(rng):
    fset = _sessions(rng)
    strata = stratum_ids(fset.participant, fset.session)
    live = LiveOrder(fset, strata, prior_rows=6.0, participant_rows=20.0, network_rows=100.0)
    order = [int(strata[(fset.participant == "2") & (fset.session == s)][0]) for s in ("1", "2")]
    rows, z, start = live.batch(np.random.default_rng(1), order)
    assert len(rows) == 30 and start.tolist() == [0] * 15 + [15] * 15
    # Each session's trials come whole and in time order, in an order that is not always the recorded one.
    runs = [fset.trial[rows[i : i + 5]] for i in range(0, 30, 5)]
    assert all(len(set(r)) == 1 for r in runs)
    assert all(np.all(np.diff(rows[i : i + 5]) == 1) for i in range(0, 30, 5))
    orders = {tuple(fset.trial[live.batch(np.random.default_rng(k), order[:1])[0]][::5]) for k in range(10)}
    assert len(orders) > 1
    # First session: the other participants' statistics as prior; second: the first session's.
    others = fset.participant != "2"
    # The population prior is the average stratum of the others: mean of their sessions' means and variances.
    sessions = [fset.X[others & (strata == k)] for k in np.unique(strata[others])]
    prior = Prior(np.mean([x.mean(0) for x in sessions], 0), np.mean([x.var(0) for x in sessions], 0), 6.0)
    normalizer = StratifiedNormalizer(4, prior, participant_weight=20.0)
    expected = np.concatenate([normalizer.update_transform(("2", "1"), fset.X[rows[:15]]),
                               normalizer.update_transform(("2", "2"), fset.X[rows[15:]])])
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-4, atol=1e-4)


def test_live_order_of_a_single_participant_takes_their_own_statistics_as_population(rng):
    fset = _sessions(rng, participants=1)
    strata = stratum_ids(fset.participant, fset.session)
    _, z, _ = LiveOrder(fset, strata, 6.0, 20.0, 100.0).batch(np.random.default_rng(0), [0, 1])
    assert torch.isfinite(z).all()


def test_live_pass_trains_hidden_layers_on_running_statistics(rng):
    fset = _sessions(rng)
    strata = stratum_ids(fset.participant, fset.session)
    X = batch_zscore(torch.tensor(fset.X, dtype=torch.float32), torch.tensor(strata), 1e-5).numpy()
    seen = []

    def record(module, args):
        if isinstance(module, StratifiedNorm) and isinstance(args[1], LiveStrata):
            seen.append(len(args[0]))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        live, _ = fit(X, fset.y, strata, 2, TrainSettings(epochs=4, quiet=True), arch_kwargs={"hidden": [8]},
                      live=LiveOrder(fset, strata, 6.0, 20.0, 100.0))
    finally:
        handle.remove()
    assert seen == [len(X)] * 4  # every window, once per epoch
    plain, _ = fit(X, fset.y, strata, 2, TrainSettings(epochs=4, quiet=True), arch_kwargs={"hidden": [8]})
    assert not torch.equal(live.out.weight, plain.out.weight)


def test_strata_are_kept_apart_online(rng):
    net = FeatureNet(6, 2, hidden=(4,), norm="stratified").eval()
    strata = Strata("B", "1")
    net.start_online(strata, prior_weight=0)
    with torch.inference_mode():
        for i, row in enumerate(torch.tensor(rng.normal(size=(20, 6)), dtype=torch.float32)):
            strata.switch("A" if i % 2 else "B", "1")
            net(row[None])
    assert strata.stats(("A", "1")).count == 10 and strata.stats(("B", "1")).count == 10


def test_layer_without_strata_or_online_state_says_what_to_do():
    with pytest.raises(RuntimeError, match=r"^StratifiedNorm without strata needs start_online\(\) first \(the live path does it\)$"):
        StratifiedNorm(4)(torch.zeros(1, 4))


def test_training_batches_hold_whole_strata(rng):
    X = rng.normal(size=(120, 10)).astype(np.float32)
    y = rng.integers(0, 2, 120)
    strata = np.repeat(np.arange(6), 20)
    seen = []

    def record(module, args):
        if isinstance(module, StratifiedNorm) and module.training:
            seen.append(torch.bincount(args[1], minlength=6))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        net, _ = fit(X, y, strata, 2, TrainSettings(epochs=3, batch_strata=2, quiet=True), arch_kwargs={"hidden": [8]})
    finally:
        handle.remove()
    assert len(seen) == 3 * 3  # 3 epochs x 3 batches of 2 strata
    for counts in seen:
        assert sorted(counts.tolist()) == [0, 0, 0, 0, 20, 20]  # two whole strata per batch
    # The warm-up prior of each layer was fitted from the training strata.
    assert not torch.equal(net.stratified_layers()[0].prior_var, torch.ones(8))


def test_deap_baselines_shapes_and_init():
    x = torch.randn(5, 32 * 99)
    for cls in (DeapDNN, DeapCNN):
        net = cls().eval()
        out = net(x)
        assert out.shape == (5, 2) and torch.all(out[:, 0] == 0)  # one output unit as two logits
        biases = [m.bias for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        assert all(torch.all(b == 0) for b in biases)
    with pytest.raises(ValueError, match="binary"):
        DeapDNN(n_classes=3)


@pytest.mark.parametrize("norm", ["stratified", "batch", "none"])
def test_same_seed_trains_the_same_weights(rng, norm):
    X = rng.normal(size=(90, 6)).astype(np.float32)
    y = rng.integers(0, 3, 90)
    strata = np.repeat(np.arange(3), 30)

    def weights(seed):
        net, _ = fit(X, y, strata, 3, TrainSettings(norm=norm, epochs=5, seed=seed, batch_strata=1, quiet=True),
                     arch_kwargs={"hidden": [8, 8]})
        return net.state_dict()

    a, b, c = weights(3), weights(3), weights(4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
