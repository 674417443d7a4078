"""The meta-learning validation protocol: held-out clusters, a fixed validation adaptation, validation.json."""
import json
import os

import numpy as np
import pytest

from helpers_gram import build_meta_trainer, run_meta_training
from clustering import ClusteringSettings, TaskSampler, build_split
from testing.planted import hierarchical_pairs
from clustering.task_sampler import held_out_clusters


@pytest.fixture(scope="module")
def planted_split():
    image, text, _ = hierarchical_pairs(1200, 16, branching=(3, 3), noise=1.0, seed=0)
    return build_split(image, text, [str(row) for row in range(1200)],
                       ClusteringSettings(k=36, levels=(3, 9)), clip_fingerprint="fp")


def test_sampler_restricted_to_clusters_never_draws_the_others(planted_split):
    held_out = held_out_clusters(planted_split, 1, 3, 16, seed=1)
    training = np.setdiff1d(np.arange(9), held_out)
    for clusters, outside in ((training, held_out), (held_out, training)):
        tasks = TaskSampler(planted_split, level=1, clusters=clusters, seed=0).sample_tasks(200)
        drawn = {t.support_cluster for t in tasks} | {t.query_cluster for t in tasks}
        assert drawn <= set(clusters.tolist()) and not drawn & set(outside.tolist())
        assert len(drawn) >= 2


def test_held_out_clusters_are_seeded_and_a_count_leaving_no_training_task_is_refused(planted_split):
    first = held_out_clusters(planted_split, 1, 3, 16, seed=1)
    assert (first == held_out_clusters(planted_split, 1, 3, 16, seed=1)).all() and len(set(first)) == 3
    with pytest.raises(ValueError, match=r"2 <= count <= \d"):
        held_out_clusters(planted_split, 1, 8, 16, seed=1)


VALIDATION = ["TRAINER.GRAM.HOLDOUT_CLUSTERS", 2, "TRAINER.GRAM.VAL_TASKS", 2, "TRAINER.GRAM.VAL_INNER_STEPS", 3,
              "TRAINER.GRAM.VAL_INNER_LR", 0.1, "TRAINER.GRAM.SUPPORT_SIZE", 4, "TRAINER.GRAM.QUERY_SIZE", 4]


def test_validation_tasks_come_from_held_out_clusters_meta_training_never_sees(gram_split, tiny_vit_checkpoint,
                                                                               tmp_path):
    split_file, _ = gram_split
    trainer = run_meta_training(split_file, tiny_vit_checkpoint, str(tmp_path), VALIDATION)
    held_out = set(trainer.held_out.tolist())
    assert len(held_out) == 2
    assert {t.support_cluster for t in trainer.val_tasks} | {t.query_cluster for t in trainer.val_tasks} <= held_out
    trained_on = trainer.sampler.sample_tasks(50)
    assert not ({t.support_cluster for t in trained_on} | {t.query_cluster for t in trained_on}) & held_out
    with open(os.path.join(str(tmp_path), "validation.json")) as handle:
        record = json.load(handle)
    assert record["held_out_clusters"] == sorted(held_out) and record["val_inner_steps"] == 3
    assert len(record["history"]) == 1 + trainer.max_epoch  # before meta-training and after each epoch
    assert 0.0 <= record["history"][-1]["query_accuracy_after_adaptation"] <= 100.0


def test_validation_adapts_the_same_way_whatever_inner_loop_is_tried(gram_split, tiny_vit_checkpoint, tmp_path):
    split_file, _ = gram_split
    scores = []
    for inner in (["TRAINER.GRAM.INNER_STEPS", 1, "TRAINER.GRAM.INNER_LR", 0.01],
                  ["TRAINER.GRAM.INNER_STEPS", 4, "TRAINER.GRAM.INNER_LR", 0.5]):
        trainer = build_meta_trainer(split_file, tiny_vit_checkpoint, str(tmp_path / str(inner[1])),
                                     VALIDATION + inner)
        scores.append(trainer.validate())
    assert scores[0] == pytest.approx(scores[1])
    assert scores[0]["query_loss_after_adaptation"] < scores[0]["query_loss_before_adaptation"]
