"""Analytical teleportation: jump over the high-noise part of sampling in closed form.

Wang & Vastola ("The Unreasonable Effectiveness of Gaussian Score Approximation for Diffusion
Models and its Applications", Sec. on analytical teleportation) observe that at high noise the
learned score is close to the score of a Gaussian with the data's mean `mu` and covariance `S`.
For Gaussian data the EDM probability-flow ODE `dx/dsigma = (x - D(x; sigma)) / sigma` is linear
and has the closed-form solution (differentiate to check; `S = U diag(lam) U^T`)

    x(sigma) = mu + U diag(sqrt((sigma^2 + lam) / (sigma_T^2 + lam))) U^T (x(sigma_T) - mu).

So: draw `x_T = sigma_T z`, jump to `sigma_skip` with this formula (zero NFE), and let any sampler
continue from there with the real score. The paper reports skipping 15-30% of the steps at equal
quality; the experiments in `experiments/samplers.py` measure it here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.diffusion import samplers as samplers_lib
from jaxrl.diffusion.scores import Denoiser


def gaussian_pf_ode_solution(
    x_t: jax.Array, sigma_t: jax.Array, sigma: jax.Array, mean: jax.Array, cov: jax.Array
) -> jax.Array:
    """Exact PF-ODE flow of `N(mean, cov)` data from level `sigma_t` to level `sigma`.

    Shapes: `x_t: [..., D]`, `mean: [D]`, `cov: [D, D]` (symmetric PSD); scalars `sigma_t`,
    `sigma >= 0`. Returns `[..., D]`.
    """
    lam, u = jnp.linalg.eigh(0.5 * (cov + cov.T))
    lam = jnp.maximum(lam, 0.0)
    gain = jnp.sqrt((sigma**2 + lam) / (sigma_t**2 + lam))
    coords = (x_t - mean) @ u
    return mean + (coords * gain) @ u.T


def skip_steps_for_fraction(num_steps: int, fraction: float) -> int:
    """Number of schedule steps jumped for a teleport `fraction` in [0, 1): `round(f * N)`,
    leaving at least one sampler step."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"teleport fraction must be in [0, 1), got {fraction}")
    return min(int(round(fraction * num_steps)), num_steps - 1)


def teleport_then_sample(
    key: jax.Array, x_init: jax.Array, sigmas: jax.Array, skip: int, mean: jax.Array,
    cov: jax.Array, *, name: str, denoiser: Denoiser,
) -> tuple[jax.Array, jax.Array]:
    """Jumps `x_init: [B, D]` from `sigmas[0]` to `sigmas[skip]` with the Gaussian closed form,
    then runs sampler `name` on `sigmas[skip:]`. Returns `([B, D], nfe [B])`; the jump costs 0 NFE.
    `skip` is a Python int (it sets shapes)."""
    if skip < 0 or skip >= sigmas.shape[0] - 1:
        raise ValueError(f"skip must be in [0, {sigmas.shape[0] - 2}], got {skip}")
    x = gaussian_pf_ode_solution(x_init, sigmas[0], sigmas[skip], mean, cov)
    return samplers_lib.sample(key, x, sigmas[skip:], name=name, denoiser=denoiser)
