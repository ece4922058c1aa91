"""A flax score network trained by denoising score matching, vmapped over seeds.

Denoising score matching (Vincent 2011; Song & Ermon 2019) with the EDM preconditioning and loss
weighting (Karras et al. 2022, Sec. 5 and Table 1): the network `F` defines the denoiser
`D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)` with `c_skip = sd^2 / (sigma^2 + sd^2)`,
`c_out = sigma sd / sqrt(sigma^2 + sd^2)`, `c_in = 1 / sqrt(sigma^2 + sd^2)`,
`c_noise = log(sigma) / 4` (`sd` = data standard deviation), and is trained on
`E_{sigma, y, n} lambda(sigma) |D(y + sigma n; sigma) - y|^2` with `log sigma ~ N(P_mean, P_std^2)`.
The minimiser of this loss is the ideal denoiser, i.e. the score `(D - x) / sigma^2` of the
smoothed data (tested against the analytic Gaussian score in tests/test_diffusion_network.py).
`train_score_net` is a pure function of a key: `jax.vmap` it over seeds. `score_net_trainer` is the
same training as a `jaxrl.sweep.Algorithm` (one update = one Adam step, the same keys), for the
one runtime (`jaxrl.experiment.run`: checkpoints, resume, seeds x learning rates in one program).
`ScoreNetConfig` follows `jaxrl.config`: shapes static, `learning_rate` sweepable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl import config as jconfig
from jaxrl import optim, sweep
from jaxrl.config import static, sweepable
from jaxrl.diffusion.scores import Denoiser


def _int_at_least_1(v: Any) -> str | None:
    return None if isinstance(v, int) and v >= 1 else "must be an integer >= 1"


def _positive(v: Any) -> str | None:
    return None if isinstance(v, int | float) and v > 0 else "must be > 0"


@dataclasses.dataclass(frozen=True)
class ScoreNetConfig:
    """Shape-setting and training settings of the score network."""

    hidden: int = static(128, check=_int_at_least_1)
    depth: int = static(3, check=_int_at_least_1)
    num_freqs: int = static(16, check=_int_at_least_1)
    num_steps: int = static(2000, check=_int_at_least_1, doc="DSM steps (= updates)")
    batch_size: int = static(256, check=_int_at_least_1)
    learning_rate: float = sweepable(2e-3, lo=0.0, lo_open=True, doc="peak Adam step size")
    sigma_data: float = static(0.5, check=_positive, doc="data std of the preconditioning")
    p_mean: float = static(-1.2, doc="mean of log sigma in training")
    p_std: float = static(1.2, check=_positive, doc="std of log sigma in training")

    def validate(self, grid: Mapping[str, Any] | None = None, prefix: str = "ScoreNetConfig",
                 sweep_prefix: str = "config.sweep") -> ScoreNetConfig:
        """One-line ValueErrors naming the field (and every swept value); returns self."""
        jconfig.validate(self, grid, prefix=prefix, sweep_prefix=sweep_prefix)
        return self


class ScoreNet(nn.Module):
    """MLP `F(x_in, c_noise[, cond])`: `x_in: [B, D]`, `c_noise: [B]`, optional conditioning
    `cond: [B, C]` (an observation; a conditional diffusion policy) -> `[B, D]`. The noise level
    enters by Fourier features, the conditioning by an MLP embedding added to it (no extra
    parameters when `cond` is None, so unconditional nets are unchanged)."""

    dim: int
    hidden: int = 128
    depth: int = 3
    num_freqs: int = 16

    @nn.compact
    def __call__(self, x_in: jax.Array, c_noise: jax.Array,
                 cond: jax.Array | None = None) -> jax.Array:
        freqs = 2.0 ** jnp.arange(self.num_freqs // 2, dtype=x_in.dtype) * 0.5
        ang = c_noise[:, None] * freqs[None, :]
        emb = jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)
        emb = nn.silu(nn.Dense(self.hidden)(emb))
        if cond is not None:
            emb = emb + nn.Dense(self.hidden)(nn.silu(nn.Dense(self.hidden)(cond)))
        h = nn.Dense(self.hidden)(x_in)
        for _ in range(self.depth):
            h = nn.silu(nn.LayerNorm()(h + emb))
            h = nn.Dense(self.hidden)(h)
        return nn.Dense(self.dim, kernel_init=nn.initializers.zeros)(nn.silu(h))


def precond_denoise(net: ScoreNet, params, x: jax.Array, sigma: jax.Array, sd: float,
                    cond: jax.Array | None = None) -> jax.Array:
    """EDM-preconditioned denoiser: `x: [B, D]`, `sigma: [B]` (optional `cond: [B, C]`) ->
    `D(x; sigma[, cond]): [B, D]`."""
    s = sigma[:, None]
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd / jnp.sqrt(s**2 + sd**2)
    c_in = 1.0 / jnp.sqrt(s**2 + sd**2)
    return c_skip * x + c_out * net.apply(params, c_in * x, jnp.log(sigma) / 4.0, cond)


def denoising_loss(
    denoise: Callable[[jax.Array, jax.Array], jax.Array], key: jax.Array, y: jax.Array,
    cfg: ScoreNetConfig,
) -> jax.Array:
    """EDM-weighted denoising score matching (Karras et al. 2022, Eq. 2 and Table 1): `log sigma
    ~ N(p_mean, p_std^2)`, `x = y + sigma n`, loss `mean_b lambda(sigma_b) |D(x_b; sigma_b) -
    y_b|^2 / D` with `lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2`.
    `denoise(x [B, D], sigma [B]) -> [B, D]`; `y: [B, D]`. Scalar."""
    k_sig, k_n = jax.random.split(key)
    sigma = jnp.exp(cfg.p_mean + cfg.p_std * jax.random.normal(k_sig, (y.shape[0],)))
    x = y + sigma[:, None] * jax.random.normal(k_n, y.shape)
    d = denoise(x, sigma)
    weight = (sigma**2 + cfg.sigma_data**2) / (sigma * cfg.sigma_data) ** 2
    return jnp.mean(weight * jnp.mean((d - y) ** 2, axis=-1))


def dsm_loss(net: ScoreNet, params, key: jax.Array, y: jax.Array, cfg: ScoreNetConfig,
             cond: jax.Array | None = None) -> jax.Array:
    """`denoising_loss` of the preconditioned net on a batch `y: [B, D]` (scalar); `cond: [B, C]`
    the per-example conditioning of a conditional net (the same for every noise draw)."""
    return denoising_loss(lambda x, s: precond_denoise(net, params, x, s, cfg.sigma_data, cond),
                          key, y, cfg)


def train_score_net(key: jax.Array, data: jax.Array, cfg: ScoreNetConfig,
                    cond: jax.Array | None = None):
    """Trains a `ScoreNet` on `data: [N, D]` by DSM with Adam (cosine decay); with `cond: [N, C]`
    a conditional net (a diffusion policy: observation `cond[i]` -> action chunk `data[i]`),
    the minibatch drawing the same rows of both.

    Pure: `jax.jit(jax.vmap(train_score_net, (0, None, None)))` trains one net per seed (cfg
    static). Returns `(params, losses [num_steps])`.
    """
    net = ScoreNet(dim=data.shape[1], hidden=cfg.hidden, depth=cfg.depth, num_freqs=cfg.num_freqs)
    k_init, k_train = jax.random.split(key)
    params = net.init(k_init, data[:2], jnp.zeros((2,)), None if cond is None else cond[:2])
    opt = optim.cosine_adam(cfg.num_steps, 0.05)
    opt_state = opt.init(params)

    def step(carry, k):
        params, opt_state = carry
        k_idx, k_loss = jax.random.split(k)
        idx = jax.random.randint(k_idx, (cfg.batch_size,), 0, data.shape[0])
        c_b = None if cond is None else cond[idx]
        loss, grads = jax.value_and_grad(
            lambda p: dsm_loss(net, p, k_loss, data[idx], cfg, c_b))(params)
        return optim.step(opt, grads, opt_state, params, learning_rate=cfg.learning_rate), loss

    (params, _), losses = jax.lax.scan(
        step, (params, opt_state), jax.random.split(k_train, cfg.num_steps))
    return params, losses


class TrainState(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array  # `k_train` of `train_score_net`: step i uses split(k_train, num_steps)[i]
    step: jax.Array


def score_net_trainer(data: jax.Array, cfg: ScoreNetConfig, name: str = "dsm") -> sweep.Algorithm:
    """`train_score_net` as an `Algorithm`: `init(key)` and `num_steps` updates give the same
    parameters as `train_score_net(key, data, cfg)` (same keys, same steps), with the peak
    learning rate read from `hparams["learning_rate"]` (sweepable). Metric: `loss`."""
    cfg = cfg.validate()
    data = jnp.asarray(data)
    net = ScoreNet(dim=data.shape[1], hidden=cfg.hidden, depth=cfg.depth, num_freqs=cfg.num_freqs)

    opt = optim.cosine_adam(cfg.num_steps, 0.05)  # peak lr: hp["learning_rate"], per step

    def init(key, hp):
        k_init, k_train = jax.random.split(key)
        params = net.init(k_init, data[:2], jnp.zeros((2,)))
        return TrainState(params, opt.init(params), k_train,
                          jnp.zeros((), jnp.int32))

    def update(s: TrainState, hp):
        k = jax.random.split(s.key, cfg.num_steps)[jnp.minimum(s.step, cfg.num_steps - 1)]
        k_idx, k_loss = jax.random.split(k)
        idx = jax.random.randint(k_idx, (cfg.batch_size,), 0, data.shape[0])
        loss, grads = jax.value_and_grad(lambda p: dsm_loss(net, p, k_loss, data[idx], cfg))(
            s.params)
        params, opt_state = optim.step(opt, grads, s.opt_state, s.params,
                                       learning_rate=hp["learning_rate"])
        return (TrainState(params, opt_state, s.key, s.step + 1),
                {"loss": loss})

    return sweep.Algorithm(init=init, update=update, num_updates=cfg.num_steps,
                           env_steps_per_update=0, hparams=jconfig.hparams(cfg), name=name)


def make_denoiser(params, dim: int, cfg: ScoreNetConfig, cond: jax.Array | None = None,
                  offset: jax.Array | None = None) -> Denoiser:
    """Single-sample denoiser `D(x [D], sigma []) -> [D]` of a trained net (vmap it freely);
    `cond: [C]` the observation of a conditional net. `offset: [D]`: the net was trained on
    `y - offset` (data in coordinates relative to the observation); the denoiser of `y` is
    `D(x) = D_rel(x - offset) + offset` (exact: denoising commutes with translation)."""
    net = ScoreNet(dim=dim, hidden=cfg.hidden, depth=cfg.depth, num_freqs=cfg.num_freqs)
    off = jnp.zeros((dim,)) if offset is None else offset
    c = None if cond is None else cond[None]
    return lambda x, sigma: precond_denoise(
        net, params, (x - off)[None], jnp.reshape(sigma, (1,)), cfg.sigma_data, c)[0] + off
