"""Class numbers to species names: a helper module beside the inference script."""

from __future__ import annotations

from collections.abc import Iterable

SPECIES = ("setosa", "versicolor", "virginica")


def names_of(classes: Iterable[int]) -> list[str]:
    return [SPECIES[int(c)] for c in classes]
