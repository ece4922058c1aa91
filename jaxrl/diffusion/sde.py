"""Forward noising processes: VP and VE SDEs, the EDM sigma parametrization, and their marginals.

Every process here is of the form `x_t = alpha(t) * (y + sigma(t) * n)` with `y` a data point and
`n ~ N(0, I)` (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
Models", Sec. 2 and Table 1). `sigma(t)` is the noise-to-signal ratio; two processes with the same
`sigma` differ only by the scale `alpha`, so a sampler written in the scale-free variable
`x / alpha` (the EDM variable) serves all of them. Score SDEs (Song et al. 2021, "Score-Based
Generative Modeling through Stochastic Differential Equations", Sec. 3.4):

* VP:  `dx = -beta(t) x dt / 2 + sqrt(beta(t)) dW`, `beta` linear from `beta_min` to `beta_max` on
  `t in [0, 1]`; `alpha_t = exp(-B(t) / 2)` with `B(t) = int_0^t beta`, marginal std
  `s_t = sqrt(1 - alpha_t^2)`, hence `sigma(t) = sqrt(exp(B(t)) - 1)`.
* VE:  `dx = sqrt(d sigma^2 / dt) dW`, `sigma(t) = smin (smax / smin)^t`, `alpha = 1`.
* EDM: VE with `sigma(t) = t` (so `g(t) = sqrt(2 t)`; samplers work in this variable), and the
  time-step schedule
  `sigma_i = (smax^(1/rho) + i / (N - 1) (smin^(1/rho) - smax^(1/rho)))^rho`, `sigma_N = 0`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE with a linear `beta` schedule (Song et al. 2021, Sec. 3.4)."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def integral_beta(self, t: jax.Array) -> jax.Array:
        """`B(t) = int_0^t beta(s) ds`."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def beta(self, t: jax.Array) -> jax.Array:
        return self.beta_min + (self.beta_max - self.beta_min) * t

    def alpha(self, t: jax.Array) -> jax.Array:
        """Mean coefficient `alpha_t = exp(-B(t) / 2)`."""
        return jnp.exp(-0.5 * self.integral_beta(t))

    def sigma(self, t: jax.Array) -> jax.Array:
        """Noise-to-signal ratio `s_t / alpha_t = sqrt(exp(B(t)) - 1)`."""
        return jnp.sqrt(jnp.expm1(self.integral_beta(t)))

    def t_of_sigma(self, sigma: jax.Array) -> jax.Array:
        """Inverse of `sigma(t)`: solves `B(t) = log(1 + sigma^2)` (a quadratic in `t`)."""
        a = 0.5 * (self.beta_max - self.beta_min)
        c = jnp.log1p(jnp.square(sigma))
        return (-self.beta_min + jnp.sqrt(self.beta_min**2 + 4.0 * a * c)) / (2.0 * a)

    def marginal(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`x_t | y ~ N(mean_coef * y, std^2 I)`; returns `(mean_coef, std)`."""
        alpha = self.alpha(t)
        return alpha, jnp.sqrt(1.0 - alpha**2)

    def drift(self, x: jax.Array, t: jax.Array) -> jax.Array:
        return -0.5 * self.beta(t) * x

    def diffusion(self, t: jax.Array) -> jax.Array:
        return jnp.sqrt(self.beta(t))


@dataclasses.dataclass(frozen=True)
class VESDE:
    """Variance-exploding SDE, `sigma(t) = smin (smax / smin)^t` (Song et al. 2021, Sec. 3.4)."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def alpha(self, t: jax.Array) -> jax.Array:
        return jnp.ones_like(t)

    def sigma(self, t: jax.Array) -> jax.Array:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def t_of_sigma(self, sigma: jax.Array) -> jax.Array:
        return jnp.log(sigma / self.sigma_min) / np.log(self.sigma_max / self.sigma_min)

    def marginal(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`x_t | y ~ N(y, sigma(t)^2 I)`; returns `(mean_coef, std) = (1, sigma(t))`: the module's
        convention `x_t = alpha (y + sigma(t) n)` (the process starts at `t = 0` from
        `y + sigma_min n`, and `int_0^t g^2 = sigma(t)^2 - sigma_min^2`)."""
        return jnp.ones_like(t), self.sigma(t)

    def drift(self, x: jax.Array, t: jax.Array) -> jax.Array:
        return jnp.zeros_like(x)

    def diffusion(self, t: jax.Array) -> jax.Array:
        s = self.sigma(t)
        return s * jnp.sqrt(2.0 * np.log(self.sigma_max / self.sigma_min))


def edm_sigmas(
    num_steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> np.ndarray:
    """EDM time-step schedule (Karras et al. 2022, Eq. 5): `[num_steps + 1]`, decreasing, last 0.

    `num_steps` is the number of solver steps; `sigmas[0] = sigma_max`,
    `sigmas[num_steps - 1] = sigma_min`, `sigmas[num_steps] = 0`. With one step the schedule is
    `[sigma_max, 0]`.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not 0.0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if num_steps == 1:
        return np.array([sigma_max, 0.0], np.float32)
    i = np.arange(num_steps, dtype=np.float64)
    a, b = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    sig = (a + i / (num_steps - 1) * (b - a)) ** rho
    return np.append(sig, 0.0).astype(np.float32)


def edm_sigmas_jax(
    num_steps: int, sigma_min: jax.Array, sigma_max: jax.Array, rho: float = 7.0
) -> jax.Array:
    """`edm_sigmas` with traceable `sigma_min` / `sigma_max` (e.g. vmapped start levels)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if num_steps == 1:
        return jnp.stack([jnp.asarray(sigma_max, jnp.float32), jnp.float32(0.0)])
    i = jnp.arange(num_steps, dtype=jnp.float32)
    a, b = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return jnp.append((a + i / (num_steps - 1) * (b - a)) ** rho, 0.0)


def ddpm_sigmas(
    num_train_steps: int = 100, schedule: str = "linear", beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> np.ndarray:
    """Noise-to-signal ratios `sigma_t = sqrt((1 - ab_t) / ab_t)` of a discrete DDPM schedule,
    `t = 0..T-1` (`[T]`, increasing), `ab_t = prod_{s <= t} (1 - beta_s)`.

    `schedule="linear"`: `beta` linear from `beta_start` to `beta_end` (Ho et al. 2020, Sec. 4;
    diffusers' `DDPMScheduler` default, which RTI-DP's eval configs use with `T = 100`).
    `schedule="cosine"`: `beta_t = min(1 - f(t + 1) / f(t), 0.999)`,
    `f(t) = cos^2((t / T + 0.008) / 1.008 * pi / 2)` (Nichol & Dhariwal 2021, Eq. 17; diffusers'
    `squaredcos_cap_v2`, Diffusion Policy's training default)."""
    if num_train_steps < 2:
        raise ValueError(f"num_train_steps must be >= 2, got {num_train_steps}")
    t = np.arange(num_train_steps, dtype=np.float64)
    if schedule == "linear":
        betas = np.linspace(beta_start, beta_end, num_train_steps)
    elif schedule == "cosine":
        f = lambda u: np.cos((u / num_train_steps + 0.008) / 1.008 * np.pi / 2) ** 2
        betas = np.minimum(1.0 - f(t + 1) / f(t), 0.999)
    else:
        raise ValueError(f"schedule must be 'linear' or 'cosine', got {schedule!r}")
    ab = np.cumprod(1.0 - betas)
    return np.sqrt((1.0 - ab) / ab).astype(np.float32)


def ddpm_tail(sigmas_t: np.ndarray, start: int) -> np.ndarray:
    """The schedule of RTI-DP's warm start from DDPM timestep `start` (its `steps: [start, ...,
    1, 0]`): `[sigma_start, ..., sigma_0, 0]`, `[start + 2]`; `start + 1` denoiser calls, the last
    one (at `t = 0`) returning the data prediction."""
    if not 0 <= start < len(sigmas_t):
        raise ValueError(f"start must be in [0, {len(sigmas_t) - 1}], got {start}")
    return np.append(np.asarray(sigmas_t)[start::-1], 0.0).astype(np.float32)
