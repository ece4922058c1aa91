"""Return-distribution representations, projections and functionals.

Three representations, all pytrees (NamedTuples of arrays, batch dimensions leading):

* `Categorical(support [K], probs [..., K])`: fixed, sorted support (C51, Bellemare et al. 2017);
  `categorical_projection` is the Cramér projection (mass split linearly between the two
  neighbouring atoms; preserves mass everywhere and the mean for atoms inside the support).
* `Quantile(locs [..., K])`: equally weighted atoms at levels `tau_i = (2i - 1) / (2K)`
  (QR-DQN, Dabney et al. 2018); `quantile_projection` / `project_to_quantile` is the
  W1-optimal projection of any finite distribution onto K quantiles (keeps mass and support, not
  the mean); `quantile_huber_loss` is the quantile-regression loss.
* `FiniteSupport(atoms [..., N], probs [..., N])`: exact finite distribution (atoms may be
  unsorted or repeated); used by exact tabular dynamic programming, no projection error.

Functionals (work on any of the three; reduce the last axis):
`mean`, `variance`, `value_at_risk(d, alpha)` (lower alpha-quantile), `cvar(d, alpha)` (lower-tail
CVaR in Rockafellar-Uryasev form, boundary atom split exactly), `expected_utility(d, f)`,
`threshold_probability(d, t)` = P(G >= t), `wasserstein_1(p, q)` (exact W1 distance), and
`utilities` (the `f` of the paper's objectives: `identity`, `cvar_hinge` = min(x, 0),
`negative_abs` = -|x|, `step` = 1{x >= 0}, `exponential(beta)`). Reference: "Optimizing Return
Distributions with Distributional Dynamic Programming" (2025), sec. 3 and 5.

Public API (used by `jaxrl.dp` and the deep agent):
    Categorical, Quantile, FiniteSupport, as_atoms, categorical_projection, project_to_categorical,
    quantile_projection, project_to_quantile, quantile_levels, quantile_huber_loss, mean,
    variance, value_at_risk, cvar, expected_utility, threshold_probability, cdf, wasserstein_1,
    utilities
"""

from jaxrl.distributions import utilities
from jaxrl.distributions.functionals import (
    cdf,
    cvar,
    expected_utility,
    mean,
    threshold_probability,
    value_at_risk,
    variance,
    wasserstein_1,
)
from jaxrl.distributions.representations import (
    Categorical,
    FiniteSupport,
    Quantile,
    as_atoms,
    categorical_projection,
    project_to_categorical,
    project_to_quantile,
    quantile_huber_loss,
    quantile_levels,
    quantile_projection,
)

__all__ = [
    "Categorical",
    "FiniteSupport",
    "Quantile",
    "as_atoms",
    "categorical_projection",
    "cdf",
    "cvar",
    "expected_utility",
    "mean",
    "project_to_categorical",
    "project_to_quantile",
    "quantile_huber_loss",
    "quantile_levels",
    "quantile_projection",
    "threshold_probability",
    "utilities",
    "value_at_risk",
    "variance",
    "wasserstein_1",
]
