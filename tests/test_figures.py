"""digitlab.figures: what a reader must be able to tell apart in a run's figures."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("n", [1, 10, 11, 20, 21, 40])
def test_every_layer_has_a_colour_of_its_own(n):
    from digitlab.figures import layer_colours

    assert len(set(layer_colours(n))) == n
