"""TPT's test-time views: AugMix at severity 1 with its nine operations and its mixing, for every set
outside the ImageNet family, over bilinear random resized crops."""
import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image


from trainers.backbone import tpt_views
from trainers.backbone.tpt_views import OPERATIONS, AugMixView, TestTimeViews, uses_augmix


def gradient_image(size: int = 48) -> Image.Image:
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size))], -1)
    return Image.fromarray(pixels.astype(np.uint8))


def test_the_nine_operations_of_augmix_keep_the_size_and_stay_mild_at_severity_one():
    assert [op.__name__ for op in OPERATIONS] == ["autocontrast", "equalize", "rotate", "solarize", "shear_x",
                                                  "shear_y", "translate_x", "translate_y", "posterize"]
    image = gradient_image()
    np.random.seed(0)
    for op in OPERATIONS:
        out = op(image, 1)
        assert out.size == image.size and out.mode == "RGB", op.__name__
    levels = []
    for seed in range(200):
        np.random.seed(seed)
        levels.append(tpt_views._int_level(1, 30))
    assert set(levels) <= {0, 1, 2} and 2 in levels  # rotation at severity 1: at most 2 of 30 degrees


def test_augmix_view_is_the_beta_blend_of_the_crop_and_the_dirichlet_mixture_of_three_chains(monkeypatch):
    crop = gradient_image()
    normalize = T.ToTensor()
    constant = Image.new("RGB", crop.size, (255, 255, 255))
    monkeypatch.setattr(np.random, "dirichlet", lambda alpha: np.array([0.5, 0.3, 0.2]))
    monkeypatch.setattr(np.random, "beta", lambda a, b: 0.25)
    view = AugMixView(normalize, operations=[lambda image, severity: constant])(crop)
    torch.testing.assert_close(view, 0.25 * normalize(crop) + 0.75 * torch.ones_like(view))


def test_views_use_augmix_outside_the_imagenet_family_and_bilinear_crops():
    assert not uses_augmix("ImageNetA", True) and not uses_augmix("ImageNet", True)
    assert uses_augmix("OxfordFlowers", True) and not uses_augmix("OxfordFlowers", False)
    views = TestTimeViews(32, 4, augmix=True)
    assert views.crop.transforms[0].interpolation == T.InterpolationMode.BILINEAR
    assert isinstance(views.finish, AugMixView)
    np.random.seed(0)
    torch.manual_seed(0)
    stack = views(gradient_image())
    assert stack.shape == (4, 3, 32, 32) and torch.isfinite(stack).all()
    assert not isinstance(TestTimeViews(32, 4, augmix=False).finish, AugMixView)


def test_tpt_uses_augmix_views_on_a_fine_grained_set_by_default(dataset_root, tiny_vit_checkpoint, tmp_path):
    from helpers_clip import build_clip_trainer
    from tools.cli import default_cfg

    assert default_cfg().TRAINER.TPT.AUGMIX is True  # configs/trainers/TPT/tiny.yaml turns it off for the toy world

    trainer = build_clip_trainer("TPT", "configs/trainers/TPT/tiny.yaml", dataset_root, str(tmp_path),
                                 tiny_vit_checkpoint, ["TRAINER.TPT.AUGMIX", "True"])
    assert isinstance(trainer.test_loader.dataset.transform.finish, AugMixView)
