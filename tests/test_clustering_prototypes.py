"""Complexity-informed prototypes: the documented formula, plain means at strength 0, the CMHC option."""
import numpy as np
import pytest

from clustering import ClusteringSettings, build_split
from testing.planted import hierarchical_pairs
from clustering.prototypes import complexity_informed_prototypes
from clustering.stats import ClusterStats


def leaves_of_three():
    """Leaves 0 and 1 form cluster 0 (leaf 1 spread out), leaf 2 is cluster 1."""
    image_means = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    text_means = np.array([[0.9, 0.1, 0.0], [0.0, 0.3, 0.3], [0.1, 0.0, 0.9]])
    count = np.array([10, 30, 5])
    return ClusterStats(count, image_means * count[:, None], text_means * count[:, None], np.array([9.0, 6.0, 4.5])), \
        image_means, text_means


def unit(rows):
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_prototypes_follow_the_documented_formula():
    leaves, image_means, text_means = leaves_of_three()
    labels, leaf_k, cluster_k, gamma = np.array([0, 0, 1]), np.array([0.5, 1.8, 0.7]), np.array([1.4, 0.6]), 0.8
    image, text, joint = complexity_informed_prototypes(leaves, labels, 2, leaf_k, cluster_k, gamma)
    weights = leaves.count * np.exp(-gamma * cluster_k[labels] * (leaf_k - 1))
    expected_image = unit(np.stack([weights[0] * image_means[0] + weights[1] * image_means[1], image_means[2]]))
    expected_text = unit(np.stack([weights[0] * text_means[0] + weights[1] * text_means[1], text_means[2]]))
    np.testing.assert_allclose(image, expected_image, rtol=1e-5)
    np.testing.assert_allclose(text, expected_text, rtol=1e-5)
    np.testing.assert_allclose(joint[1], unit(np.concatenate([image_means[2], text_means[2]])), rtol=1e-5)


def test_strength_zero_gives_plain_means_and_a_positive_one_moves_toward_the_coherent_leaf():
    leaves, image_means, _ = leaves_of_three()
    labels, leaf_k, cluster_k = np.array([0, 0, 1]), np.array([0.5, 1.8, 0.7]), np.array([1.4, 0.6])
    plain = complexity_informed_prototypes(leaves, labels, 2, leaf_k, cluster_k, 0.0)
    merged = leaves.merge(labels, 2)
    np.testing.assert_allclose(plain[0], merged.image_prototypes(), rtol=1e-5)
    np.testing.assert_allclose(plain[2], merged.joint_prototypes(), rtol=1e-5)
    informed = complexity_informed_prototypes(leaves, labels, 2, leaf_k, cluster_k, 1.0)
    assert informed[0][0] @ unit(image_means[0]) > plain[0][0] @ unit(image_means[0])
    with pytest.raises(ValueError, match="strength must be >= 0"):
        complexity_informed_prototypes(leaves, labels, 2, leaf_k, cluster_k, -1.0)


def test_cmhc_option_changes_prototypes_only():
    image, text, _ = hierarchical_pairs(1200, 16, branching=(3, 3), noise=1.0, seed=0)
    ids = [str(row) for row in range(1200)]
    plain = build_split(image, text, ids, ClusteringSettings(k=36, levels=(3, 9)), clip_fingerprint="fp")
    informed = build_split(image, text, ids, ClusteringSettings(k=36, levels=(3, 9), prototype_strength=2.0),
                           clip_fingerprint="fp")
    for a, b in zip(plain.levels, informed.levels):
        np.testing.assert_array_equal(a.assignment, b.assignment)
        np.testing.assert_allclose(a.complexity, b.complexity)
        assert not np.allclose(a.joint_prototypes, b.joint_prototypes)
        np.testing.assert_allclose(np.linalg.norm(b.joint_prototypes, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="prototype_strength must be >= 0"):
        ClusteringSettings(prototype_strength=-0.5).check(1200)
