"""Numeric changes made on purpose: the bits of a handful of short recipes and every published
recipe's resolved config, against tests/golden/digests.json. A change that moves one fails here
with the recipe's name; recording new digests (python tests/golden/recipes.py) is a commit of
its own that says why, with a line in docs/reproduction.md's changelog."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import recipes  # noqa: E402

RECORDED = json.loads(recipes.DIGESTS.read_text())


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_a_recipe_trains_to_the_recorded_bits(name):
    here = recipes.environment()
    if here not in RECORDED["weights"]:  # another NumPy or BLAS kernel: other bits, not wrong
        pytest.skip(f"the digests are recorded for {', '.join(RECORDED['weights'])}; this is "
                    f"{here}: record its own with python tests/golden/recipes.py")
    assert recipes.weights_digest(recipes.RECIPES[name]) == RECORDED["weights"][here][name], (
        f"{name}: its final weights moved ({here}); if on purpose, record them and say why")


def test_every_published_recipe_resolves_to_the_recorded_config():
    found = recipes.config_digests()
    moved = sorted(name for name in found if found[name] != RECORDED["configs"].get(name))
    assert not moved and set(found) == set(RECORDED["configs"]), (
        f"resolved configs moved: {', '.join(moved) or 'recipes added or removed'}; if on "
        "purpose, record them and say why")
