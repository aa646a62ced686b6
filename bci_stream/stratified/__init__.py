"""Stratified normalization, in one home: statistics per (participant, session) stratum.

- :mod:`.moments`: pooling with a prior and z-scores, batch and causal, numpy and torch;
- :mod:`.running`: running statistics window by window, warm-up priors, persistence;
- :mod:`.classes`: what each class adds to the features, left out of class-aware running statistics;
- :mod:`.strata`: the one owner of a live pipeline's current stratum;
- :mod:`.layers`: the same normalization inside a torch network.
"""

from bci_stream.stratified.classes import ClassEffects
from bci_stream.stratified.layers import LiveStrata, StratifiedNorm
from bci_stream.stratified.moments import (HIDDEN_EPS, INPUT_EPS, Level, batch_zscore, causal_zscore, pool,
                                           population_prior, stratum_moments, zscore)
from bci_stream.stratified.running import (ANONYMOUS, NAME_RULE, Prior, RunningStats, StratifiedNormalizer, Stratum,
                                           check_name, name_problem, stratum_key)
from bci_stream.stratified.strata import Checkpoints, Step, Strata

__all__ = ["ANONYMOUS", "HIDDEN_EPS", "INPUT_EPS", "Level", "NAME_RULE", "Checkpoints", "ClassEffects", "LiveStrata",
           "Prior", "RunningStats", "Step", "Strata", "StratifiedNorm", "StratifiedNormalizer", "Stratum",
           "batch_zscore", "causal_zscore", "check_name", "name_problem", "pool", "population_prior", "stratum_key",
           "stratum_moments", "zscore"]
