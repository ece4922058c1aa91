"""The one table of STAC's variants: `VARIANTS[name] -> Variant` (Özalp 2026, Sec. 5).

A variant is a critic family (`jaxrl.stac.families`) plus how many critics it trains, its value
rule (what the TD target bootstraps and the actor maximises), the reference code's temperature
rule for it and whether the paper runs it with dropout. `STACConfig.variant` checks against
this table, `make_learner` builds from it and `experiments.stac` takes its method list and
program order from it: a new variant is one entry here.

| name | family | critics | value | temperature rule | dropout |
|---|---|---|---|---|---|
| stac | Gaussian | 1 | `mu - beta sigma` | paper | yes |
| sac | Q | 2 | `min_i q_i` | sac_rule | no |
| sac_single | Q | 1 | `q` | sac_rule | no |
| estac | Gaussian | 2 | `min_i mu_i` | paper | no |
| dsac | quantile | 2 | `min_i mean_j z_ij` (target: quantile sets) | sac_rule | no |
| ggd | generalized Gaussian | 1 | `mu - beta std` | paper | yes |

Temperature rules: `rlwarehouse/algos/{stac,estac,sac,dsac}.py` of the reference code (see
`jaxrl.stac.stac`); `ggd` is STAC with another critic family and takes STAC's rule.
"""

from __future__ import annotations

from typing import NamedTuple

from jaxrl.stac import families
from jaxrl.stac.families import CriticFamily, ValueRule
from jaxrl.stac.ggd import GGD


class Variant(NamedTuple):
    """One method of the comparison.

    Attributes:
      family: the critic family.
      n_critics: number of critics (twins are two parameter sets stacked on axis 0).
      value: `(mean [n, B], spread [n, B], beta) -> [B]`, the value of target and actor.
      alpha_rule: the reference code's temperature rule (`alpha_update="reference"`).
      dropout: the paper runs it with actor and critic dropout (its own methods) or without
        (the baselines).
    """

    family: CriticFamily
    n_critics: int
    value: ValueRule
    alpha_rule: str
    dropout: bool


VARIANTS: dict[str, Variant] = {
    "stac": Variant(families.GAUSSIAN, 1, families.pessimistic_value, "paper", True),
    "sac": Variant(families.Q, 2, families.min_value, "sac_rule", False),
    "sac_single": Variant(families.Q, 1, families.min_value, "sac_rule", False),
    "estac": Variant(families.GAUSSIAN, 2, families.min_value, "paper", False),
    "dsac": Variant(families.QUANTILE, 2, families.min_value, "sac_rule", False),
    "ggd": Variant(GGD, 1, families.pessimistic_value, "paper", True),
}
