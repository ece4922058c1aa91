"""Score-based samplers in the EDM (scale-free) variable, each counting its NFE exactly.

All samplers take a denoiser `D(x; sigma)` (`x: [D]`, `sigma: []`; see `scores.py`), a start
point `x: [D]` at noise level `sigmas[0]` (for sampling from scratch `x = sigmas[0] * z`), a
decreasing schedule `sigmas: [N + 1]` ending at `0` (e.g. `sde.edm_sigmas`), and return
`(x0 [D], nfe [] int32)`: the sample and the number of denoiser evaluations actually made, counted
by a counter carried through the loop. They are pure, act on one sample, and are `vmap`ped over
batch and seed axes by `sample()`.

* `euler_maruyama`: reverse-time SDE (Song et al. 2021, Sec. 3.2/4.1) discretised with
  Euler-Maruyama, for the VE/EDM process (exact variance clock: `x' = x + (s^2 - s'^2) score +
  sqrt(s^2 - s'^2) z`) or the VP process (native time `t`, `x_vp = alpha_t x`). NFE `N`; no noise
  on the last step.
* `predictor_corrector`: reverse-diffusion predictor + Langevin corrector with signal-to-noise
  ratio `snr` (Song et al. 2021, Alg. 2-4). NFE `N (1 + num_corrector)`.
* `euler`: probability-flow ODE `dx/dsigma = (x - D(x; sigma)) / sigma` (Karras et al. 2022,
  Eq. 4), explicit Euler. NFE `N`.
* `heun`: EDM Algorithm 1 without churn: Heun's 2nd-order method, Euler on a step into
  `sigma = 0`. NFE `2N - 1` for a schedule ending at 0, `2N` for one ending above 0.
* `ddim`: DDIM with `eta = 0` (Song, Meng, Ermon 2021) written in the VP variables
  `alpha_bar = 1 / (1 + sigma^2)`; algebraically it is Euler in `sigma` (Karras et al. 2022,
  Sec. 3) and DPM-Solver-1. NFE `N`.
* `dpmpp_2m`: DPM-Solver++(2M) (Lu et al. 2022), data prediction, multistep second order in
  `lambda = -log sigma`; first step and the step to `sigma = 0` are first order. NFE `N`.
* `ddpm`: ancestral sampling with the DDPM posterior (Ho et al. 2020, Eq. 6-7, "fixed small"
  variance), generalised by DDIM's `eta` (Song, Meng, Ermon 2021, Eq. 12 and 16): `eta = 1` is
  the DDPM posterior, `eta = 0` deterministic DDIM. Written in the VP variables of the schedule;
  on a DDPM discrete schedule (`sde.ddpm_sigmas`) it is diffusers' `DDPMScheduler.step` without
  sample clipping. NFE `N`; the step into `sigma = 0` returns the data prediction.

`SAMPLERS` is the registry: name -> `Sampler(fn, stochastic, nfe)` with `nfe(num_steps,
ends_at_zero, num_corrector)` the exact count; `get_sampler`, `nfe_for_steps` and
`steps_for_nfe` read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrl.diffusion.scores import Denoiser
from jaxrl.diffusion.sde import VPSDE


def _check(x: jax.Array, sigmas: jax.Array) -> None:
    if x.ndim != 1:
        raise ValueError(f"samplers act on one sample x: [D]; got shape {x.shape} (vmap it)")
    if sigmas.ndim != 1 or sigmas.shape[0] < 2:
        raise ValueError(f"sigmas must be [N + 1] with N >= 1, got shape {sigmas.shape}")


def euler(denoiser: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array | None = None):
    """Probability-flow ODE, explicit Euler in `sigma`. Returns `(x0 [D], nfe)`."""
    del key
    _check(x, sigmas)

    def step(carry, s):
        x, nfe = carry
        sig, sig_next = s
        d = (x - denoiser(x, sig)) / sig
        return (x + (sig_next - sig) * d, nfe + 1), None

    (x, nfe), _ = jax.lax.scan(step, (x, jnp.int32(0)), (sigmas[:-1], sigmas[1:]))
    return x, nfe


def heun(denoiser: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array | None = None):
    """EDM Algorithm 1 (deterministic, no churn): Heun steps `sigma_i -> sigma_{i+1}`; a step into
    `sigma = 0` is Euler (the 2nd evaluation would be at sigma 0, where D is the identity map's
    limit and the correction vanishes). A schedule ending above 0 gets Heun on every step.
    Returns `(x0 [D], nfe)` with `nfe = 2N - 1` if `sigmas[-1] == 0`, else `2N`."""
    del key
    _check(x, sigmas)

    def step(carry, s):
        x, nfe = carry
        sig, sig_next = s
        d = (x - denoiser(x, sig)) / sig
        x_e = x + (sig_next - sig) * d

        def correct(_):
            safe = jnp.where(sig_next > 0, sig_next, 1.0)  # vmapped cond runs both branches
            d2 = (x_e - denoiser(x_e, safe)) / safe
            return x + (sig_next - sig) * 0.5 * (d + d2), nfe + 2

        return jax.lax.cond(sig_next > 0, correct, lambda _: (x_e, nfe + 1), None), None

    (x, nfe), _ = jax.lax.scan(step, (x, jnp.int32(0)), (sigmas[:-1], sigmas[1:]))
    return x, nfe


def ddim(denoiser: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array | None = None):
    """DDIM (eta = 0) in VP variables: `x_vp = sqrt(ab) x`, `ab = 1 / (1 + sigma^2)`;
    `x_vp' = sqrt(ab') x0_hat + sqrt(1 - ab') eps_hat`. Returns `(x0 [D], nfe)`."""
    del key
    _check(x, sigmas)
    ab = 1.0 / (1.0 + sigmas**2)

    def step(carry, s):
        x_vp, nfe = carry
        sig, a, a_next = s
        x0_hat = denoiser(x_vp / jnp.sqrt(a), sig)  # the network sees the scale-free input
        eps_hat = (x_vp - jnp.sqrt(a) * x0_hat) / jnp.sqrt(1.0 - a)
        x_vp = jnp.sqrt(a_next) * x0_hat + jnp.sqrt(1.0 - a_next) * eps_hat
        return (x_vp, nfe + 1), None

    (x_vp, nfe), _ = jax.lax.scan(
        step, (x * jnp.sqrt(ab[0]), jnp.int32(0)), (sigmas[:-1], ab[:-1], ab[1:]))
    return x_vp / jnp.sqrt(ab[-1]), nfe


def dpmpp_2m(denoiser: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array | None = None):
    """DPM-Solver++(2M), data prediction. `h_i = lambda_{i+1} - lambda_i`, `r = h_{i-1} / h_i`,
    `x' = (s'/s) x + (1 - s'/s) ((1 + 1/(2r)) D_i - D_{i-1} / (2r))`; first order on the first
    step and on the step to `sigma = 0`. Returns `(x0 [D], nfe)`."""
    del key
    _check(x, sigmas)
    n = sigmas.shape[0] - 1

    def step(carry, i):
        x, d_prev, nfe = carry
        sig, sig_next = sigmas[i], sigmas[i + 1]
        d = denoiser(x, sig)
        ratio = sig_next / sig
        sig_prev = sigmas[jnp.maximum(i - 1, 0)]
        safe_next = jnp.where(sig_next > 0, sig_next, 1.0)
        h = jnp.log(sig) - jnp.log(safe_next)
        h_last = jnp.log(sig_prev) - jnp.log(sig)
        r = h_last / h
        inv = 0.5 / jnp.where(r > 0, r, 1.0)
        second = (1.0 + inv) * d - inv * d_prev
        use_second = (i > 0) & (sig_next > 0)
        d_mix = jnp.where(use_second, second, d)
        return (ratio * x + (1.0 - ratio) * d_mix, d, nfe + 1), None

    (x, _, nfe), _ = jax.lax.scan(step, (x, jnp.zeros_like(x), jnp.int32(0)), jnp.arange(n))
    return x, nfe


def ddpm(
    denoiser: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array, eta: float = 1.0,
):
    """Ancestral (DDPM-posterior) steps, DDIM-`eta` form, in VP variables
    `x_vp = sqrt(ab) x`, `ab = 1 / (1 + sigma^2)`: with `x0_hat = D(x; sigma)` and
    `eps_hat = (x_vp - sqrt(ab) x0_hat) / sqrt(1 - ab)`,
    `x_vp' = sqrt(ab') x0_hat + sqrt(1 - ab' - s^2) eps_hat + s z`,
    `s^2 = eta^2 (1 - ab') / (1 - ab) (1 - ab / ab')` (the DDPM posterior variance at `eta = 1`).
    Returns `(x0 [D], nfe)` in the scale-free variable, `nfe = N`."""
    _check(x, sigmas)
    n = sigmas.shape[0] - 1
    ab = 1.0 / (1.0 + sigmas**2)
    keys = jax.random.split(key, n)

    def step(carry, s):
        x_vp, nfe = carry
        sig, a, a_next, k = s
        x0_hat = denoiser(x_vp / jnp.sqrt(a), sig)
        eps_hat = (x_vp - jnp.sqrt(a) * x0_hat) / jnp.sqrt(1.0 - a)
        var = eta**2 * (1.0 - a_next) / (1.0 - a) * (1.0 - a / a_next)
        z = jax.random.normal(k, x_vp.shape, x_vp.dtype)
        x_vp = (jnp.sqrt(a_next) * x0_hat + jnp.sqrt(jnp.maximum(1.0 - a_next - var, 0.0))
                * eps_hat + jnp.sqrt(var) * z)
        return (x_vp, nfe + 1), None

    (x_vp, nfe), _ = jax.lax.scan(
        step, (x * jnp.sqrt(ab[0]), jnp.int32(0)), (sigmas[:-1], ab[:-1], ab[1:], keys))
    return x_vp / jnp.sqrt(ab[-1]), nfe


def euler_maruyama(
    denoiser: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array, sde: str = "ve",
    vp: VPSDE | None = None,
):
    """Reverse-time SDE, Euler-Maruyama. `sde="ve"`: VE/EDM process in its variance clock,
    `x' = x + (s^2 - s'^2) score(x, s) + sqrt(s^2 - s'^2) z`. `sde="vp"`: the VP SDE in native
    time `t_i = t(sigma_i)`,
    `x_vp' = x_vp + [beta x_vp / 2 + beta score_t(x_vp)] dt + sqrt(beta dt) z`
    with `score_t(x_vp) = score(x_vp / alpha, sigma) / alpha`. No noise on the last step.
    Returns `(x0 [D], nfe)` in the scale-free variable."""
    _check(x, sigmas)
    vp = VPSDE() if vp is None else vp
    n = sigmas.shape[0] - 1
    keys = jax.random.split(key, n)
    last = jnp.arange(n) == n - 1

    if sde == "ve":
        def step(carry, s):
            x, nfe = carry
            sig, sig_next, k, is_last = s
            score = (denoiser(x, sig) - x) / sig**2
            var = sig**2 - sig_next**2
            z = jax.random.normal(k, x.shape, x.dtype)
            x = x + var * score + jnp.where(is_last, 0.0, jnp.sqrt(var)) * z
            return (x, nfe + 1), None

        (x, nfe), _ = jax.lax.scan(
            step, (x, jnp.int32(0)), (sigmas[:-1], sigmas[1:], keys, last))
        return x, nfe
    if sde == "vp":
        ts = vp.t_of_sigma(sigmas)

        def step(carry, s):
            x_vp, nfe = carry
            t, t_next, sig, k, is_last = s
            a = vp.alpha(t)
            score = (denoiser(x_vp / a, sig) - x_vp / a) / (sig**2 * a)
            dt = t - t_next
            beta = vp.beta(t)
            z = jax.random.normal(k, x_vp.shape, x_vp.dtype)
            x_vp = x_vp + (0.5 * beta * x_vp + beta * score) * dt
            x_vp = x_vp + jnp.where(is_last, 0.0, jnp.sqrt(beta * dt)) * z
            return (x_vp, nfe + 1), None

        (x_vp, nfe), _ = jax.lax.scan(
            step, (x * vp.alpha(ts[0]), jnp.int32(0)), (ts[:-1], ts[1:], sigmas[:-1], keys, last))
        return x_vp / vp.alpha(ts[-1]), nfe
    raise ValueError(f"sde must be 've' or 'vp', got {sde!r}")


def predictor_corrector(
    denoiser: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array, snr: float = 0.16,
    num_corrector: int = 1,
):
    """Predictor-corrector sampler (Song et al. 2021, Alg. 2, VE): at each level `num_corrector`
    Langevin steps `x += eps score + sqrt(2 eps) z`, then one reverse-diffusion predictor step to
    the next level (noise-free on the last step). Song et al. set `eps = 2 (snr |z| / |score|)^2`
    with norms averaged over the batch; acting on one sample we use the norms' high-noise
    expectations `|z| = sqrt(D)`, `|score| = sqrt(D) / sigma`, i.e. `eps = 2 (snr sigma)^2` (the
    per-sample ratio diverged in 2-D when `|score|` happened to be small).
    Returns `(x0 [D], nfe)` with `nfe = N (1 + num_corrector)`."""
    _check(x, sigmas)
    n = sigmas.shape[0] - 1
    keys = jax.random.split(key, (n, num_corrector + 1))
    last = jnp.arange(n) == n - 1

    def step(carry, s):
        x, nfe = carry
        sig, sig_next, ks, is_last = s
        for j in range(num_corrector):
            score = (denoiser(x, sig) - x) / sig**2
            z = jax.random.normal(ks[j], x.shape, x.dtype)
            eps = 2.0 * (snr * sig) ** 2
            x = x + eps * score + jnp.sqrt(2.0 * eps) * z
        score = (denoiser(x, sig) - x) / sig**2
        var = sig**2 - sig_next**2
        z = jax.random.normal(ks[-1], x.shape, x.dtype)
        x = x + var * score + jnp.where(is_last, 0.0, jnp.sqrt(var)) * z
        return (x, nfe + 1 + num_corrector), None

    (x, nfe), _ = jax.lax.scan(step, (x, jnp.int32(0)), (sigmas[:-1], sigmas[1:], keys, last))
    return x, nfe


@dataclasses.dataclass(frozen=True)
class Sampler:
    """A registry entry: the single-sample function, whether it draws noise, and its NFE rule
    `nfe(num_steps, ends_at_zero, num_corrector) -> int`."""

    fn: Callable
    stochastic: bool
    nfe: Callable[[int, bool, int], int]


def _one_per_step(n: int, ends_at_zero: bool, num_corrector: int) -> int:
    return n


SAMPLERS: dict[str, Sampler] = {
    "euler_maruyama": Sampler(euler_maruyama, True, _one_per_step),
    "predictor_corrector": Sampler(predictor_corrector, True,
                                   lambda n, z, c: n * (1 + c)),
    "euler": Sampler(euler, False, _one_per_step),
    "heun": Sampler(heun, False, lambda n, z, c: 2 * n - (1 if z else 0)),
    "ddim": Sampler(ddim, False, _one_per_step),
    "dpmpp_2m": Sampler(dpmpp_2m, False, _one_per_step),
    "ddpm": Sampler(ddpm, True, _one_per_step),
}


def _entry(name: str) -> Sampler:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def get_sampler(name: str) -> Callable:
    """The single-sample sampler called `name` (a key of `SAMPLERS`)."""
    return _entry(name).fn


def nfe_for_steps(name: str, num_steps: int, num_corrector: int = 1,
                  ends_at_zero: bool = True) -> int:
    """NFE sampler `name` spends on a schedule of `num_steps` steps (ending at sigma = 0 unless
    `ends_at_zero=False`)."""
    return int(_entry(name).nfe(num_steps, ends_at_zero, num_corrector))


def steps_for_nfe(name: str, nfe: int, num_corrector: int = 1) -> int:
    """Largest number of steps (schedule ending at 0) whose NFE is `<= nfe`; raises if none is."""
    entry = _entry(name)
    steps = 0
    while entry.nfe(steps + 1, True, num_corrector) <= nfe:
        steps += 1
    if steps < 1:
        raise ValueError(f"nfe={nfe} is too small for sampler {name!r}")
    return steps


def sample(
    key: jax.Array, x_init: jax.Array, sigmas: jax.Array, *, name: str, denoiser: Denoiser
) -> tuple[jax.Array, jax.Array]:
    """Runs sampler `name` on a batch: `x_init: [B, D]` at level `sigmas[0]` -> `([B, D], nfe [B])`.

    `key` drives the SDE samplers' noise (one subkey per sample); ODE samplers ignore it. Pure:
    wrap the caller in `jax.jit` (with `name` static) and `vmap` it over seeds."""
    fn = get_sampler(name)
    keys = jax.random.split(key, x_init.shape[0])
    return jax.vmap(lambda k, x: fn(denoiser, x, sigmas, key=k))(keys, x_init)


def sample_from_noise(
    key: jax.Array, num: int, dim: int, sigmas: jax.Array, *, name: str, denoiser: Denoiser
) -> tuple[jax.Array, jax.Array]:
    """Draws `x_T = sigmas[0] z` and samples: returns `([num, dim], nfe [num])`."""
    k_init, k_run = jax.random.split(key)
    x_init = sigmas[0] * jax.random.normal(k_init, (num, dim))
    return sample(k_run, x_init, sigmas, name=name, denoiser=denoiser)
