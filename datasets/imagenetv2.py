"""ImageNetV2 matched-frequency (all 1000 classes), test only:
``imagenetv2/{imagenetv2-matched-frequency-format-val/<ImageNet label>/, classnames.txt}``.

Its class folders are named by ImageNet label (``0`` .. ``999``), so labels equal ImageNet's.
"""
import os

from dassl.data.datasets import DATASET_REGISTRY

from .imagenet_folders import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetV2(ImageNetVariant):
    dataset_dir = "imagenetv2"
    image_subdir = "imagenetv2-matched-frequency-format-val"
    layout = "imagenetv2/{imagenetv2-matched-frequency-format-val/<0..999>/, classnames.txt}"

    def class_folders(self, imagenet_wnids: list[str]) -> dict[str, str]:
        """Folders ``0`` .. ``N-1`` (N = lines of classnames.txt); a missing one is an error."""
        folders = {str(label): wnid for label, wnid in enumerate(imagenet_wnids)}
        missing = [folder for folder in folders if not os.path.isdir(os.path.join(self.image_dir, folder))]
        if missing:
            raise FileNotFoundError(
                f"ImageNetV2: expected a folder per ImageNet label in {self.image_dir}; "
                f"{os.path.join(self.image_dir, missing[0])} is missing ({len(missing)} in all)"
            )
        return folders
