"""Clustering quality: planted clusters are recovered, the hierarchy nests, the cross-modal affinity
separates what one modality alone cannot, complexity follows the planted structure."""
import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from clustering import ClusteringSettings, FeatureError, build_split
from clustering.cmhc import average_linkage_levels
from clustering.features import PairedFeatures
from clustering.kmeans import gpu_available, resolve_gpu
from testing.planted import hierarchical_pairs, labels_at_depth, noisy_rows


def _ids(n):
    return [f"pair{row}" for row in range(n)]


def test_flat_kmeans_recovers_gaussian_blobs():
    image, text, labels = hierarchical_pairs(1600, 32, branching=(8,), spread=1.0, seed=3)
    settings = ClusteringSettings(method="kmeans", k=8, nredo=10, seed=3)
    split = build_split(image, text, _ids(1600), settings, clip_fingerprint="fp")
    assert len(split.levels) == 1
    assert adjusted_rand_score(labels, split.levels[0].assignment) >= 0.9


def test_cmhc_recovers_planted_hierarchy_at_every_level():
    branching = (4, 4)
    image, text, labels = hierarchical_pairs(2400, 48, branching=branching, seed=0)
    settings = ClusteringSettings(method="cmhc", k=64, levels=(4, 16), seed=0)
    split = build_split(image, text, _ids(2400), settings, clip_fingerprint="fp")
    for depth, level in enumerate(split.levels):
        assert level.num_clusters == (4, 16)[depth]
        assert adjusted_rand_score(labels_at_depth(labels, branching, depth), level.assignment) >= 0.9


def test_hierarchy_nests_every_child_in_one_parent():
    image, text, _ = hierarchical_pairs(1500, 24, branching=(3, 3, 3), noise=1.5, seed=1)
    split = build_split(image, text, _ids(1500), ClusteringSettings(k=60, levels=(3, 9, 27)), "fp")
    for coarse, fine in zip(split.levels, split.levels[1:]):
        assert fine.parent.shape == (fine.num_clusters,)
        # every pair of a fine cluster sits in the fine cluster's parent, so no child straddles two parents
        np.testing.assert_array_equal(fine.parent[fine.assignment], coarse.assignment)
        np.testing.assert_array_equal(np.bincount(fine.parent, weights=fine.sizes, minlength=coarse.num_clusters),
                                      coarse.sizes)
    for level in split.levels:
        np.testing.assert_array_equal(np.bincount(level.assignment, minlength=level.num_clusters), level.sizes)


def test_average_linkage_matches_sklearn_on_single_points():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((40, 6))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    affinity = points @ points.T
    ours = average_linkage_levels(affinity, np.ones(40), [3, 7])
    for labels, count in zip(ours, (3, 7)):
        reference = AgglomerativeClustering(n_clusters=count, metric="precomputed", linkage="average")
        assert adjusted_rand_score(reference.fit_predict(1.0 - affinity), labels) == pytest.approx(1.0)


def _cmhc_ari(image, text, labels, k: int, clusters: int, weights) -> float:
    """ARI of one CMHC level of ``clusters`` clusters (from ``k`` leaves) against the planted labels."""
    settings = ClusteringSettings(method="cmhc", k=k, levels=(clusters,), affinity_weights=weights)
    split = build_split(image, text, _ids(labels.size), settings, "fp")
    return adjusted_rand_score(labels, split.levels[0].assignment)


def _agreeing_and_disagreeing_pairs(seed=0, per_cluster=200, dim=48):
    """Six planted clusters of CLIP-like pairs (a caption's feature points where its image's does,
    plus a shared modality gap). Clusters 0, 1: both modalities distinct. Clusters 2, 3: the same
    images, different captions. Clusters 4, 5: different images, the same captions."""
    rng = np.random.default_rng(seed)
    concepts = rng.standard_normal((6, dim))
    concepts /= np.linalg.norm(concepts, axis=1, keepdims=True)
    gap = rng.standard_normal(dim)
    gap /= np.linalg.norm(gap)
    image_concept = np.array([0, 1, 2, 2, 4, 5])
    text_concept = np.array([0, 1, 2, 3, 4, 4])
    labels = np.repeat(np.arange(6), per_cluster)
    image = noisy_rows(concepts[image_concept].astype(np.float32), labels, 0.6, rng)
    text = noisy_rows((concepts[text_concept] + gap).astype(np.float32), labels, 0.6, rng)
    return image, text, labels


@pytest.mark.parametrize("weights, recovered", [
    ((1, 0, 0), False),  # images alone cannot split clusters 2 and 3
    ((0, 1, 0), False),  # captions alone cannot split clusters 4 and 5
    ((1, 1, 0), True),  # both together split all six
])
def test_combined_affinity_resolves_clusters_where_modalities_disagree(weights, recovered):
    ari = _cmhc_ari(*_agreeing_and_disagreeing_pairs(), k=36, clusters=6, weights=weights)
    assert (ari >= 0.9) == recovered, f"ARI {ari:.3f} with weights {weights}"


def _pairs_with_modality_nuisance(seed=0, num_pairs=1600, dim=64, strength=1.5):
    """Four concepts; every image also carries one of two styles and every caption one of two
    templates, drawn independently of the concept and strong enough to dominate unimodal similarity.
    Style and template live in directions unrelated to each other, so only image-text similarity
    sees the concept alone."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((9, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    concepts, styles, templates, gap = directions[:4], directions[4:6], directions[6:8], directions[8]
    labels = rng.integers(0, 4, num_pairs)
    image_centres = concepts[:, None] + strength * styles[None]  # (concept, style)
    text_centres = concepts[:, None] + gap + strength * templates[None]  # (concept, template)
    style, template = rng.integers(0, 2, num_pairs), rng.integers(0, 2, num_pairs)
    image = noisy_rows(image_centres.reshape(8, dim).astype(np.float32), labels * 2 + style, 0.5, rng)
    text = noisy_rows(text_centres.reshape(8, dim).astype(np.float32), labels * 2 + template, 0.5, rng)
    return image, text, labels


@pytest.mark.parametrize("weights, recovered", [
    ((1, 0, 0), False),  # groups images by style
    ((0, 1, 0), False),  # groups captions by template
    ((0, 0, 1), True),  # image-text similarity ignores both nuisances
])
def test_cross_modal_similarity_sees_concepts_through_modality_nuisance(weights, recovered):
    ari = _cmhc_ari(*_pairs_with_modality_nuisance(), k=48, clusters=4, weights=weights)
    assert (ari >= 0.9) == recovered, f"ARI {ari:.3f} with weights {weights}"


def test_complexity_is_higher_for_spread_and_mismatched_clusters():
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((3, 32)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(3), 300)
    image = np.concatenate([noisy_rows(centres, labels[:300], 0.3, rng),  # tight, captions match
                            noisy_rows(centres, labels[300:600], 1.5, rng),  # spread
                            noisy_rows(centres, labels[600:], 0.3, rng)])  # captions of another concept
    text = image.copy()
    text[600:] = noisy_rows(centres[[0]], np.zeros(300, int), 0.3, rng)
    settings = ClusteringSettings(method="kmeans", k=3, nredo=5, complexity_weights=(1, 1, 0))
    level = build_split(image, text, _ids(900), settings, "fp").levels[0]
    cluster_of = [np.bincount(level.assignment[labels == c]).argmax() for c in range(3)]
    tight, spread, mismatched = level.complexity[cluster_of]
    assert spread > tight and mismatched > tight
    assert level.complexity.mean() == pytest.approx(1.0)


def test_prototypes_are_unit_and_point_toward_their_cluster():
    image, text, labels = hierarchical_pairs(800, 16, branching=(4,), spread=1.0, seed=5)
    level = build_split(image, text, _ids(800), ClusteringSettings(k=16, levels=(4,)), "fp").levels[0]
    for name, width in (("image_prototypes", 16), ("text_prototypes", 16), ("joint_prototypes", 32)):
        prototypes = getattr(level, name)
        assert prototypes.shape == (4, width) and prototypes.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(prototypes, axis=1), 1.0, rtol=1e-5)
    joint = PairedFeatures(image, text).joint(np.arange(800))
    nearest = np.argmax(joint @ level.joint_prototypes.T, axis=1)
    assert np.mean(nearest == level.assignment) > 0.95


def test_same_seed_gives_the_same_split():
    image, text, _ = hierarchical_pairs(1200, 16, branching=(4, 4), noise=1.2, seed=4)
    settings = ClusteringSettings(k=32, levels=(4, 16), seed=7)
    first = build_split(image, text, _ids(1200), settings, "fp")
    second = build_split(image, text, _ids(1200), settings, "fp")
    for a, b in zip(first.levels, second.levels):
        np.testing.assert_array_equal(a.assignment, b.assignment)
        np.testing.assert_array_equal(a.joint_prototypes, b.joint_prototypes)


@pytest.mark.skipif(gpu_available(), reason="this FAISS build has a GPU")
def test_gpu_request_without_faiss_gpu_falls_back_to_cpu(caplog):
    assert resolve_gpu(True) is False
    assert "clustering on the CPU" in caplog.text


@pytest.mark.skipif(not gpu_available(), reason="needs a FAISS build with a GPU")
def test_gpu_and_cpu_give_the_same_split():
    image, text, _ = hierarchical_pairs(2000, 32, branching=(4, 4), seed=6)
    cpu, gpu = (build_split(image, text, _ids(2000), ClusteringSettings(k=32, levels=(4, 16), gpu=flag), "fp")
                for flag in (False, True))
    for a, b in zip(cpu.levels, gpu.levels):
        assert np.mean(a.assignment == b.assignment) > 0.99
        np.testing.assert_allclose(a.joint_prototypes, b.joint_prototypes, atol=1e-3)


def test_fewer_pairs_than_clusters_is_refused():
    image, text, _ = hierarchical_pairs(10, 8, branching=(2,), seed=0)
    with pytest.raises(ValueError, match="the corpus has 10 pairs but 256 clusters were asked for"):
        build_split(image, text, _ids(10), ClusteringSettings(k=256), "fp")


def test_levels_finer_than_leaves_are_refused():
    image, text, _ = hierarchical_pairs(200, 8, branching=(2,), seed=0)
    with pytest.raises(ValueError, match="finest CMHC level has 64 clusters but k-means makes only 32"):
        build_split(image, text, _ids(200), ClusteringSettings(k=32, levels=(4, 64)), "fp")


def test_nan_feature_row_is_named():
    image, text, _ = hierarchical_pairs(100, 8, branching=(2,), seed=0)
    text[37, 3] = np.nan
    with pytest.raises(FeatureError, match=r"text features: row 37 \(corpus id 'pair37'\) contains NaN or inf"):
        build_split(image, text, _ids(100), ClusteringSettings(k=4, levels=(2,)), "fp")


def test_duplicate_corpus_ids_are_refused():
    image, text, _ = hierarchical_pairs(100, 8, branching=(2,), seed=0)
    ids = _ids(100)
    ids[60] = ids[12]
    with pytest.raises(FeatureError, match=r"duplicate id 'pair12' \(rows 12 and 60\)"):
        build_split(image, text, ids, ClusteringSettings(k=4, levels=(2,)), "fp")


def _fake_gpu_faiss(monkeypatch, num_gpus):
    """FAISS that reports ``num_gpus`` GPUs and records the ``gpu`` argument k-means gets (runs on the CPU)."""
    import faiss

    from clustering import kmeans

    requested = []

    class RecordingKmeans(faiss.Kmeans):
        def __init__(self, d, k, **kwargs):
            requested.append(kwargs.pop("gpu"))
            super().__init__(d, k, **kwargs)

    monkeypatch.setattr(kmeans.faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(kmeans.faiss, "get_num_gpus", lambda: num_gpus)
    monkeypatch.setattr(kmeans.faiss, "Kmeans", RecordingKmeans)
    return requested


@pytest.mark.parametrize("num_gpus, asked, expected", [(4, True, 4), (1, True, 1), (4, False, 0), (0, True, 0)])
def test_kmeans_runs_on_every_visible_gpu_when_asked(monkeypatch, num_gpus, asked, expected):
    requested = _fake_gpu_faiss(monkeypatch, num_gpus)
    image, text, _ = hierarchical_pairs(200, 8, branching=(2,), seed=0)
    build_split(image, text, _ids(200), ClusteringSettings(method="kmeans", k=4, gpu=asked), "fp")
    assert requested == [expected]
