"""A flax score network trained by denoising score matching, vmapped over seeds.

Denoising score matching (Vincent 2011; Song & Ermon 2019) with the EDM preconditioning and loss
weighting (Karras et al. 2022, Sec. 5 and Table 1): the network `F` defines the denoiser
`D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)` with `c_skip = sd^2 / (sigma^2 + sd^2)`,
`c_out = sigma sd / sqrt(sigma^2 + sd^2)`, `c_in = 1 / sqrt(sigma^2 + sd^2)`,
`c_noise = log(sigma) / 4` (`sd` = data standard deviation), and is trained on
`E_{sigma, y, n} lambda(sigma) |D(y + sigma n; sigma) - y|^2` with `log sigma ~ N(P_mean, P_std^2)`.
The minimiser of this loss is the ideal denoiser, i.e. the score `(D - x) / sigma^2` of the
smoothed data (tested against the analytic Gaussian score in tests/test_diffusion_network.py).
`train_score_net` is a pure function of a key: `jax.vmap` it over seeds.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl.diffusion.scores import Denoiser


@dataclasses.dataclass(frozen=True)
class ScoreNetConfig:
    """Shape-setting and training settings of the score network."""

    hidden: int = 128
    depth: int = 3
    num_freqs: int = 16
    num_steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 2e-3
    sigma_data: float = 0.5
    p_mean: float = -1.2
    p_std: float = 1.2

    def validate(self) -> ScoreNetConfig:
        for name in ("hidden", "depth", "num_freqs", "num_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ScoreNetConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "sigma_data", "p_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ScoreNetConfig.{name} must be > 0, got {getattr(self, name)}")
        return self


class ScoreNet(nn.Module):
    """MLP `F(x_in, c_noise)`: `x_in: [B, D]`, `c_noise: [B]` -> `[B, D]`; Fourier features."""

    dim: int
    hidden: int = 128
    depth: int = 3
    num_freqs: int = 16

    @nn.compact
    def __call__(self, x_in: jax.Array, c_noise: jax.Array) -> jax.Array:
        freqs = 2.0 ** jnp.arange(self.num_freqs // 2, dtype=x_in.dtype) * 0.5
        ang = c_noise[:, None] * freqs[None, :]
        emb = jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)
        emb = nn.silu(nn.Dense(self.hidden)(emb))
        h = nn.Dense(self.hidden)(x_in)
        for _ in range(self.depth):
            h = nn.silu(nn.LayerNorm()(h + emb))
            h = nn.Dense(self.hidden)(h)
        return nn.Dense(self.dim, kernel_init=nn.initializers.zeros)(nn.silu(h))


def precond_denoise(net: ScoreNet, params, x: jax.Array, sigma: jax.Array, sd: float) -> jax.Array:
    """EDM-preconditioned denoiser: `x: [B, D]`, `sigma: [B]` -> `D(x; sigma): [B, D]`."""
    s = sigma[:, None]
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd / jnp.sqrt(s**2 + sd**2)
    c_in = 1.0 / jnp.sqrt(s**2 + sd**2)
    return c_skip * x + c_out * net.apply(params, c_in * x, jnp.log(sigma) / 4.0)


def dsm_loss(net: ScoreNet, params, key: jax.Array, y: jax.Array, cfg: ScoreNetConfig) -> jax.Array:
    """EDM-weighted denoising score matching loss on a batch `y: [B, D]` (scalar)."""
    k_sig, k_n = jax.random.split(key)
    sigma = jnp.exp(cfg.p_mean + cfg.p_std * jax.random.normal(k_sig, (y.shape[0],)))
    x = y + sigma[:, None] * jax.random.normal(k_n, y.shape)
    d = precond_denoise(net, params, x, sigma, cfg.sigma_data)
    weight = (sigma**2 + cfg.sigma_data**2) / (sigma * cfg.sigma_data) ** 2
    return jnp.mean(weight * jnp.mean((d - y) ** 2, axis=-1))


def train_score_net(key: jax.Array, data: jax.Array, cfg: ScoreNetConfig):
    """Trains a `ScoreNet` on `data: [N, D]` by DSM with Adam (cosine decay).

    Pure: `jax.jit(jax.vmap(train_score_net, (0, None, None)))` trains one net per seed (cfg
    static). Returns `(params, losses [num_steps])`.
    """
    net = ScoreNet(dim=data.shape[1], hidden=cfg.hidden, depth=cfg.depth, num_freqs=cfg.num_freqs)
    k_init, k_train = jax.random.split(key)
    params = net.init(k_init, data[:2], jnp.zeros((2,)))
    opt = optax.adam(optax.cosine_decay_schedule(cfg.learning_rate, cfg.num_steps, 0.05))
    opt_state = opt.init(params)

    def step(carry, k):
        params, opt_state = carry
        k_idx, k_loss = jax.random.split(k)
        idx = jax.random.randint(k_idx, (cfg.batch_size,), 0, data.shape[0])
        loss, grads = jax.value_and_grad(lambda p: dsm_loss(net, p, k_loss, data[idx], cfg))(
            params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(
        step, (params, opt_state), jax.random.split(k_train, cfg.num_steps))
    return params, losses


def make_denoiser(params, dim: int, cfg: ScoreNetConfig) -> Denoiser:
    """Single-sample denoiser `D(x [D], sigma []) -> [D]` of a trained net (vmap it freely)."""
    net = ScoreNet(dim=dim, hidden=cfg.hidden, depth=cfg.depth, num_freqs=cfg.num_freqs)
    return lambda x, sigma: precond_denoise(
        net, params, x[None], jnp.reshape(sigma, (1,)), cfg.sigma_data)[0]
