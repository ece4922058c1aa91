"""`jaxrl.dp.grid.batched_value_iteration` (issue 21 item 3): B MDPs in one vmapped program,
each stopping on its own value criterion; the compacted rounds must give every MDP the
single-MDP solver's result (same sweeps; CDFs equal to float32 round-off, since XLA may order a
vmapped reduction differently)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.dp import grid, tabular


def test_batched_equals_single_mdp_solves_with_and_without_compaction():
    B, S, A, NC, K = 5, 3, 2, 9, 21
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(S), size=(B, S, A))
    R = rng.uniform(-1.5, 1.5, size=(B, S, A, S))
    c, z = np.linspace(-6, 6, NC), np.linspace(-8, 8, K)
    ops = [grid.make_grid_operator(tabular.MDP(P[i], R[i], np.ones(S) / S, 0.8, 0), c, z)
           for i in range(B)]
    op = jax.tree.map(lambda *x: jnp.stack(x), *ops)._replace(stocks=ops[0].stocks,
                                                              support=ops[0].support)
    dU = grid.utility_weights(lambda x: jnp.minimum(x, 0.0), ops[0].stocks, ops[0].support)
    F0 = jnp.broadcast_to(jnp.asarray(grid.delta0_cdf(z), jnp.float32), (B, S, NC, A, K))
    # the MDPs stop at different sweeps, so rounds of widths 8 (5 live lanes), 4, 2, 1 occur
    Fc, nc, ec = grid.batched_value_iteration(F0, op, dU, tol=1e-6, max_sweeps=200)
    Ff, nf, ef = grid.batched_value_iteration(F0, op, dU, tol=1e-6, max_sweeps=200,
                                              compact=False)
    assert len(set(nc.tolist())) > 1  # the MDPs stop at different sweeps
    for i in range(B):
        F1, _, n1, e1 = grid._iterate(F0[i], ops[i], dU, 1e-6, 200, grid.STALL_SWEEPS, 0.0)
        assert int(n1) == nc[i] == nf[i]
        np.testing.assert_allclose(Fc[i], np.asarray(F1), atol=1e-6)
        np.testing.assert_allclose(Ff[i], np.asarray(F1), atol=1e-6)
        assert ec[i] < 1e-6 or nc[i] == 200
