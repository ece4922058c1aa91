"""The one registry of policy-gradient estimators, shared by the gradient study and learning.

Every estimator maps a batch of episodes to a posterior over the gradient (Ghavamzadeh, Engel &
Valko, JMLR 2016): `ESTIMATORS[name].fn(ep, fisher, hp, mask, fit=..., capacity=...)` returns an
`Estimate` (posterior mean `[n]`, covariance `[n, n]` (zero for MC), the GP hyperparameters used
and the BAC dictionary size). Arguments:

* `ep`: `policies.Episodes` of `M` episodes (`[M, T, ...]`);
* `fisher`: `[n, n]` the Fisher information `G` used by the kernels (exact, or estimated from the
  batch by `bpg.fisher_from_steps` / `bpg.fisher_from_trajectories`). For BAC this is the
  occupancy Fisher `int mu(z) u u^T dz = E[sum_t u_t u_t^T]`, which equals the trajectory Fisher
  (cross-time terms vanish), so one `G` serves every estimator;
* `hp`: the float settings `gp_noise` (BPG `Sigma = gp_noise I`), `gamma`, `bac_noise`,
  `bac_c_x`, `bac_c_f`, `bac_lengthscale`, `bac_nu` (scalars, may be traced);
* `mask`: optional `[M]` 0/1, episodes kept (one compiled program for every `M`);
* `fit` (static): when True the GP's signal scale `a` (multiplying the kernel) and noise
  variance `b` are fitted per batch by maximizing the log evidence (`gp.EvidenceFit`, type-II
  maximum likelihood); otherwise `a = 1` and `b` = the configured noise (the papers' fixed
  values). The posterior mean depends only on `b / a`; the covariance scales with `a`.
* `capacity` (static): BAC dictionary capacity.

Estimators: `mc` (REINFORCE), `mc_baseline` (REINFORCE with a leave-one-out mean-return
baseline), `bpg1` / `bpg2` (BPG Models 1 and 2, Sec. 4), `bac` (Bayesian actor-critic with an
ALD-sparsified Monte-Carlo GPTD critic, Sec. 7).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.bayes_pg import bpg, gp, gptd, policies


class Estimate(NamedTuple):
    """`posterior` (mean `[n]`, cov `[n, n]`), GP `scale` and `noise` (1 and 0 for MC),
    `dict_size` (BAC; 0 otherwise), `at_bound` (the evidence fit ended at its range's end)."""

    posterior: bpg.GradientPosterior
    scale: jax.Array
    noise: jax.Array
    dict_size: jax.Array
    at_bound: jax.Array


Hypers = Mapping[str, jax.Array | float]
EstimatorFn = Callable[..., Estimate]


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """One registry entry: the function, a label for tables and whether it has a posterior."""

    fn: EstimatorFn
    label: str
    posterior: bool


def _kept(ep: policies.Episodes, mask: jax.Array | None) -> jax.Array:
    return jnp.ones(ep.returns.shape, bool) if mask is None else mask.astype(bool)


def _estimate(post: bpg.GradientPosterior, scale=1.0, noise=0.0, size=0.0, at_bound=False
              ) -> Estimate:
    dt = post.mean.dtype
    return Estimate(post, jnp.asarray(scale, dt), jnp.asarray(noise, dt), jnp.asarray(size, dt),
                    jnp.asarray(at_bound))


def mc(ep: policies.Episodes, fisher: jax.Array, hp: Hypers, mask: jax.Array | None = None, *,
       fit: bool = False, capacity: int = 64) -> Estimate:
    """REINFORCE `(1/M) sum_i R_i u_i` (no posterior: zero covariance)."""
    del fisher, hp, fit, capacity
    g = bpg.mc_gradient(ep.returns, ep.trajectory_scores, mask=mask)
    return _estimate(bpg.GradientPosterior(g, jnp.zeros((g.shape[0],) * 2, g.dtype)))


def mc_baseline(ep: policies.Episodes, fisher: jax.Array, hp: Hypers,
                mask: jax.Array | None = None, *, fit: bool = False, capacity: int = 64
                ) -> Estimate:
    """REINFORCE with the leave-one-out mean-return baseline (unbiased; no posterior)."""
    del fisher, hp, fit, capacity
    g = bpg.mc_gradient(ep.returns, ep.trajectory_scores, baseline=True, mask=mask)
    return _estimate(bpg.GradientPosterior(g, jnp.zeros((g.shape[0],) * 2, g.dtype)))


def _bpg(model: int, ep: policies.Episodes, fisher: jax.Array, hp: Hypers,
         mask: jax.Array | None, fit: bool) -> Estimate:
    r, u = ep.returns, ep.trajectory_scores
    if fit:
        f = bpg.evidence_fit(model, r, u, fisher, mask)
        scale, noise, at_bound = f.scale, f.noise, f.at_bound
    else:
        scale, noise, at_bound = 1.0, hp["gp_noise"], False
    fn = bpg.bpg_model1 if model == 1 else bpg.bpg_model2
    post = fn(r, u, fisher, noise, mask, signal_scale=scale)
    return _estimate(post, scale, noise, 0.0, at_bound)


def bpg1(ep: policies.Episodes, fisher: jax.Array, hp: Hypers, mask: jax.Array | None = None,
         *, fit: bool = False, capacity: int = 64) -> Estimate:
    """BPG Model 1 (quadratic Fisher kernel on `R u`), Sec. 4.1."""
    del capacity
    return _bpg(1, ep, fisher, hp, mask, fit)


def bpg2(ep: policies.Episodes, fisher: jax.Array, hp: Hypers, mask: jax.Array | None = None,
         *, fit: bool = False, capacity: int = 64) -> Estimate:
    """BPG Model 2 (Fisher kernel on `R`), Sec. 4.2."""
    del capacity
    return _bpg(2, ep, fisher, hp, mask, fit)


def bac(ep: policies.Episodes, fisher: jax.Array, hp: Hypers, mask: jax.Array | None = None,
        *, fit: bool = False, capacity: int = 64) -> Estimate:
    """Bayesian actor-critic (Sec. 7) on the batch's state-action pairs `z = (x, a)`.

    The critic is Monte-Carlo GPTD with kernel `a (c_x k_x(x, x') + c_F u^T G^{-1} u')` on an
    ALD dictionary (threshold `bac_nu`, built with `a = 1`) of the kept, valid steps, regressing
    the discounted returns-to-go with noise variance `b`; the gradient posterior is
    `mean = c_F U alpha`, `cov = a (c_F G - c_F^2 U C U^T)` (`alpha`, `C` with noise `b / a`).
    With `fit`, `(a, b)` maximize the sparse model's evidence.
    """
    m, t, d = ep.obs.shape
    n = ep.scores.shape[-1]
    valid = (ep.valid & _kept(ep, mask)[:, None]).reshape(-1)
    u = ep.scores.reshape(m * t, n)
    g_inv = bpg.inv_psd(fisher)
    y = jax.vmap(gptd.discounted_returns_to_go, (0, 0, None))(
        ep.rewards, ep.valid, hp["gamma"]).reshape(-1)
    y = jnp.where(valid, y, 0.0)
    z = jnp.concatenate([ep.obs.reshape(m * t, d).astype(u.dtype), u], axis=1)
    kern = gptd.bac_kernel(hp["bac_c_x"], hp["bac_c_f"], hp["bac_lengthscale"], g_inv, d)
    dic = gp.ald_sparsify(kern, z, hp["bac_nu"], capacity, valid)
    k_dict = gp.gram(kern, dic.points, dic.points) * dic.mask[:, None] * dic.mask[None, :]
    if fit:
        n_valid = jnp.sum(valid.astype(u.dtype))
        s0 = jnp.maximum(jnp.sum(dic.coeffs * (dic.coeffs @ k_dict)) / n_valid,
                         jnp.finfo(u.dtype).tiny)
        f = gp.profile_evidence_fit(gp.sparse_quad_logdet(k_dict, dic.coeffs, y, n_valid),
                                    n_valid, 1, 1e-4 * s0, 1e4 * s0)
        scale, noise, at_bound = f.scale, f.noise, f.at_bound
    else:
        scale, noise, at_bound = jnp.asarray(1.0, u.dtype), hp["bac_noise"], False
    post_q = gptd.sparse_mc_gptd(k_dict, dic.coeffs, y, noise / scale)
    u_dict = jnp.where(dic.mask[:, None], dic.points[:, d:], 0.0)
    post = gptd.bac_gradient(post_q, u_dict, fisher, hp["bac_c_f"])
    post = bpg.GradientPosterior(post.mean, scale * post.cov)
    return _estimate(post, scale, noise, dic.size, at_bound)


ESTIMATORS: dict[str, EstimatorSpec] = {
    "mc": EstimatorSpec(mc, "MC (REINFORCE)", False),
    "mc_baseline": EstimatorSpec(mc_baseline, "MC + baseline", False),
    "bpg1": EstimatorSpec(bpg1, "BPG Model 1", True),
    "bpg2": EstimatorSpec(bpg2, "BPG Model 2", True),
    "bac": EstimatorSpec(bac, "BAC (sparse MC-GPTD)", True),
}
NAMES: tuple[str, ...] = tuple(ESTIMATORS)
LABELS: dict[str, str] = {k: v.label for k, v in ESTIMATORS.items()}
POSTERIOR: tuple[str, ...] = tuple(k for k, v in ESTIMATORS.items() if v.posterior)

DEFAULT_HYPERS: dict[str, float] = {
    "gp_noise": 1.0, "gamma": 1.0, "bac_noise": 1.0, "bac_c_x": 1.0, "bac_c_f": 1.0,
    "bac_lengthscale": 1.0, "bac_nu": 0.1}
