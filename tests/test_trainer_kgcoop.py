"""KgCoOp, the subclassing example: CoOp plus a pull toward the hand-crafted prompt's text features."""
import pytest
import torch
import torch.nn.functional as F

from prompt_method_checks import changed_weights, shared_tests, train_briefly
from trainers.backbone.clip_loader import load_clip
from trainers.backbone.text_encoder import encode_texts
from trainers.coop import CoOp
from trainers.kgcoop import KgCoOp

CONFIG = "configs/trainers/KgCoOp/tiny_ep6.yaml"
EPOCHS = 6


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_root, tiny_vit_checkpoint):
    output_dir = str(tmp_path_factory.mktemp("kgcoop"))
    return train_briefly("KgCoOp", CONFIG, dataset_root, output_dir, tiny_vit_checkpoint)


def test_kgcoop_is_a_coop_subclass_that_trains_only_the_context(trained):
    assert issubclass(KgCoOp, CoOp)
    assert list(trained["trainer"].prompt_parameters()) == ["prompt_learner.ctx"]
    assert changed_weights(trained) == ["prompt_learner.ctx"]


test_training_loss_falls, test_evaluation_prints_result_lines_and_reload_reproduces_accuracy = \
    shared_tests("KgCoOp", CONFIG, EPOCHS)


def test_loss_adds_the_weighted_distance_to_the_hand_crafted_text_features(trained, tiny_vit_checkpoint):
    trainer = trained["trainer"]
    model = trainer.model
    hand_crafted = encode_texts(load_clip(tiny_vit_checkpoint).float(),
                                [f"a photo of a {name}." for name in trainer.dm.dataset.classnames])
    torch.testing.assert_close(model.hand_crafted_text_features, hand_crafted)
    batch = next(iter(trainer.test_loader))
    images, labels = batch["img"][:8], batch["label"][:8]
    with torch.no_grad():
        loss, logits = trainer.compute_loss(images, labels)
        text_features = model.class_text_features()
    squared_distance = ((text_features - hand_crafted) ** 2).sum(dim=-1).mean()
    expected = F.cross_entropy(logits, labels) + trainer.cfg.TRAINER.KGCOOP.W * squared_distance / 2
    assert squared_distance > 1e-4  # training moved the prompts away from the hand-crafted ones
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, model(images))
