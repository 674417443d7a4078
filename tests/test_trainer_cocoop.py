"""CoCoOp on a generated colour dataset with a tiny CLIP: trainable parameters, learning,
batched per-image prompts, checkpoints and precision fallback."""
import pytest
import torch

from helpers_clip import build_clip_trainer
from prompt_method_checks import QUIET, train_briefly
from trainers.backbone.precision import PrecisionFallbackWarning

CONFIG = "configs/trainers/CoCoOp/tiny_c4_ep5_batch4.yaml"
EPOCHS = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_root, tiny_vit_checkpoint):
    output_dir = str(tmp_path_factory.mktemp("cocoop"))
    return train_briefly("CoCoOp", CONFIG, dataset_root, output_dir, tiny_vit_checkpoint,
                         ["OPTIM.MAX_EPOCH", str(EPOCHS), "DATASET.NUM_SHOTS", "4"])


def test_trainable_parameters_are_context_and_meta_net_and_clip_is_unchanged(trained):
    trainer = trained["trainer"]
    prompt_names = list(trainer.prompt_parameters())
    assert prompt_names == ["prompt_learner.ctx", "prompt_learner.meta_net.linear1.weight",
                            "prompt_learner.meta_net.linear1.bias", "prompt_learner.meta_net.linear2.weight",
                            "prompt_learner.meta_net.linear2.bias"]
    for name, param in trainer.model.named_parameters():
        changed = not torch.equal(param, trained["before"][name])
        assert changed == (name in prompt_names), name


def test_training_loss_falls(trained):
    epoch_means = [sum(losses) / len(losses) for losses in trained["history"]]
    assert len(epoch_means) == EPOCHS
    assert epoch_means[-1] < 0.9 * epoch_means[0]


def test_batched_chunked_prompts_equal_one_image_at_a_time(trained):
    model = trained["trainer"].model
    images = next(iter(trained["trainer"].test_loader))["img"][:3]
    with torch.no_grad():
        one_by_one = torch.cat([model(image.unsqueeze(0)) for image in images])
        model.text_chunk = 5  # 3 images x 4 classes in chunks of 5 prompts
        batched = model(images)
        model.text_chunk = 256
    torch.testing.assert_close(batched, one_by_one)


def test_chunked_training_step_gives_the_same_gradients(trained):
    model = trained["trainer"].model
    batch = next(iter(trained["trainer"].test_loader))
    grads = []
    for chunk in (256, 3):
        model.text_chunk = chunk
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(batch["img"][:4]), batch["label"][:4]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in trained["trainer"].prompt_parameters().values()]))
    model.text_chunk = 256
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-3, atol=1e-4 * grads[0].abs().max().item())


def test_evaluation_prints_result_lines_and_reload_reproduces_accuracy(trained, capsys, dataset_root,
                                                                       tiny_vit_checkpoint, tmp_path):
    accuracy = trained["trainer"].test()
    printed = capsys.readouterr().out
    for line in ("=> result", "* total: 16", "* accuracy:", "* macro_f1:"):
        assert line in printed
    reloaded = build_clip_trainer("CoCoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint, QUIET)
    reloaded.load_model(trained["output_dir"], epoch=EPOCHS)
    assert reloaded.test() == accuracy


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning(dataset_root, tiny_vit_checkpoint, tmp_path):
    with pytest.warns(PrecisionFallbackWarning, match="fp16"):
        trainer = build_clip_trainer("CoCoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                     ["TRAINER.COCOOP.PREC", "fp16", *QUIET])
    assert trainer.precision == "fp32"
    assert trainer.model.prompt_learner.meta_net.linear1.weight.dtype == torch.float32


def test_cached_image_features_feed_the_meta_net(dataset_root, tiny_vit_checkpoint, tmp_path):
    trainer = build_clip_trainer("CoCoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["TRAINER.COCOOP.CACHE_IMAGE_FEATURES", "True", "DATASET.NUM_SHOTS", "2", *QUIET])
    trainer.before_train()
    batch = next(iter(trainer.train_loader_x))
    assert batch["img"].shape == (4, 64)  # features, not images
    before = trainer.model.prompt_learner.meta_net.linear2.weight.detach().clone()
    trainer.before_epoch()
    trainer.run_epoch()
    assert not torch.equal(trainer.model.prompt_learner.meta_net.linear2.weight, before)
