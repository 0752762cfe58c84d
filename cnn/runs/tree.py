"""A hierarchy in model-output order and the soft cascade's probabilities, p(label) = p(parent) x p(label | parent),
in plain numpy: what a hierarchical run predicts with (its metrics are cnn.evaluation.cascade's)."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tree:
    """The hierarchy in model-output order: each model's classes sorted, as train-cnn orders them."""

    parents: tuple  # the coarse model's outputs
    children: dict  # parent -> its labels, the outputs of its model (one label: no model)
    classes: tuple  # every label: the cascade's outputs

    @classmethod
    def from_mapping(cls, mapping):
        """The tree of a {label: parent} mapping."""
        parents = tuple(sorted(set(mapping.values())))
        children = {p: tuple(sorted(label for label, q in mapping.items() if q == p)) for p in parents}
        return cls(parents, children, tuple(sorted(mapping)))

    @property
    def modelled(self):
        """The parents with a model of their own (more than one label), in order."""
        return tuple(p for p in self.parents if len(self.children[p]) > 1)

    def parent_of(self):
        """Parent index of each class index, as an array."""
        index = {p: j for j, p in enumerate(self.parents)}
        owner = {label: p for p in self.parents for label in self.children[p]}
        return np.array([index[owner[label]] for label in self.classes])


def given(tree, fine, parent, n):
    """p(label | parent) for `parent`'s labels: its model's outputs, or a column of ones for a single label."""
    return fine[parent] if parent in fine else np.ones((n, 1))


def soft_probabilities(tree, coarse, fine):
    """(n, classes) p(label) = p(parent) x p(label | parent) from the coarse (n, parents) probabilities and
    {parent: (n, its labels)} of the modelled parents."""
    coarse = np.asarray(coarse, dtype=float)
    index = {label: i for i, label in enumerate(tree.classes)}
    probs = np.zeros((len(coarse), len(tree.classes)))
    for j, parent in enumerate(tree.parents):
        conditional = given(tree, fine, parent, len(coarse))
        for k, label in enumerate(tree.children[parent]):
            probs[:, index[label]] = coarse[:, j] * conditional[:, k]
    return probs
