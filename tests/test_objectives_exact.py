"""Every objective must learn the exact target R(x)/Z on the tiny vocabulary (DESIGN.md §3).

The reward is fixed and pseudo-random; the policy's terminal distribution is computed exactly by dynamic
programming over all 35 states (34 terminal objects, at most 3 fragments, symmetric stems included).
"""

from __future__ import annotations

import pytest

from molgfn.chem.enumerate import enumerate_states
from molgfn.gflownet import GFlowNet, hashed_score
from molgfn.verify import exact_tv, verify, verify_config

STEPS = {"tb": 300, "db": 400, "subtb": 300, "fldb": 200}


def test_untrained_policy_is_far_from_the_target():
    gfn = GFlowNet(verify_config("tb", 1), score_fn=hashed_score)
    space = enumerate_states(gfn.vocab, 3)
    assert len(space.terminal_keys) == 34
    assert exact_tv(gfn, space) > 0.2


@pytest.mark.parametrize("objective", ["tb", "db", "subtb", "fldb"])
def test_objective_reaches_exact_target(objective):
    result = verify(verify_config(objective, STEPS[objective]), eval_every=STEPS[objective])
    assert result.tv_initial > 0.2
    assert result.tv_final < 0.05, (
        f"{objective}: total variation {result.tv_final:.4f} after {result.steps} steps"
    )
