"""Martingale policy evaluation and TD learning in continuous time (Jia & Zhou, JMLR 2022).

Policy evaluation is equivalent to making `e^{-rho t} J(t, X_t) + int_0^t e^{-rho s} r ds` a
martingale. Two correct families of algorithms follow: minimising the martingale loss (ML,
Monte-Carlo regression on the reward-to-go) and solving martingale orthogonality conditions
`E int xi_t dM_t = 0` with test functions `xi` (online CTD(0)/CTD(lambda), closed-form CLSTD,
gradient CGTD). The naive mean-square TD error (MSTDE) minimiser is biased: it targets the
quadratic variation of `J(t, X_t)`. Environments and the trajectory simulator live in
`jaxrl.envs.diffusions`. All functions are pure and can be `vmap`ped over seeds and over `dt`.
"""

from jaxrl.martingale.linear import (
    clstd,
    ml_linear,
    mstde_linear,
    orthogonality_system,
    path_features,
    td_linear_parts,
)
from jaxrl.martingale.objectives import (
    fit_weights,
    martingale_loss,
    path_values,
    reward_to_go,
    td_increments,
    traces,
)
from jaxrl.martingale.online import cgtd, ctd, fit_loss
from jaxrl.martingale.values import (
    LinearValue,
    MLPValue,
    mlp_value,
    polynomial_features,
    quadratic_features,
    quadratic_features_nd,
    quadratic_theta,
    zero_base,
)

__all__ = [
    "LinearValue",
    "MLPValue",
    "cgtd",
    "clstd",
    "ctd",
    "fit_loss",
    "fit_weights",
    "martingale_loss",
    "ml_linear",
    "mlp_value",
    "mstde_linear",
    "orthogonality_system",
    "path_features",
    "path_values",
    "polynomial_features",
    "quadratic_features",
    "quadratic_features_nd",
    "quadratic_theta",
    "reward_to_go",
    "td_increments",
    "td_linear_parts",
    "traces",
    "zero_base",
]
