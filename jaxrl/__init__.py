"""jaxrl: purely functional JAX research code for RL and score-based sampling.

Every algorithm is a pure function of a PRNG key, jitted and vmapped over seeds; see
`jaxrl.sweep` for the engine that turns one run into thousands.
"""

__version__ = "0.1.0"
