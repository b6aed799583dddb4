"""The row order of one training pass, by the config's name."""

# each gives the row indices of a pass over n rows; None = file order, taken as contiguous
# slices (no gather copy)
ORDERS = {
    "shuffle": lambda n, rng: rng.permutation(n),
    "file": lambda n, rng: None,
    "random": lambda n, rng: rng.integers(0, n, n),  # uniform draws with replacement (rolisz)
}
