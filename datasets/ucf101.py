"""UCF101 (middle frames of the videos) in CoOp's layout:
``ucf101/{UCF-101-midframes/<Action_Name>/, split_zhou_UCF101.json}``.

Class names are the CamelCase action names split into words joined by ``_`` (``ApplyEyeMakeup`` ->
``Apply_Eye_Makeup``), which are also the frame folders; building a new split uses ``ucfTrainTestlist``
split 01.
"""
import os
import re

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import base

TRAINTEST_DIR = "ucfTrainTestlist"


@DATASET_REGISTRY.register()
class UCF101(base.CoOpStyleDataset):
    dataset_dir = "ucf101"
    image_subdirs = ("UCF-101-midframes",)
    split_filename = "split_zhou_UCF101.json"
    layout = "ucf101/{UCF-101-midframes/<Action_Name>/, split_zhou_UCF101.json}"

    def make_split(self) -> base.Split:
        action_to_label = {}
        with open(self.require_file(os.path.join(TRAINTEST_DIR, "classInd.txt"))) as file:
            for line in file:
                if line.strip():
                    class_id, action = line.split()
                    action_to_label[action] = int(class_id) - 1
        trainval = self.read_list("trainlist01.txt", action_to_label)
        test = self.read_list("testlist01.txt", action_to_label)
        train, val = base.split_trainval(trainval)
        return train, val, test

    def read_list(self, filename: str, action_to_label: dict[str, int]) -> list[Datum]:
        """Items of a list file (lines ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi [label]``)."""
        filepath = self.require_file(os.path.join(TRAINTEST_DIR, filename))
        items = []
        with open(filepath) as file:
            for line_number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                action, video = line.split()[0].split("/")
                where = f"{filepath}:{line_number}"
                if action not in action_to_label:
                    raise ValueError(f"{where}: action {action!r} is not in classInd.txt")
                folder = action_classname(action)
                impath = os.path.join(self.image_dir, folder, os.path.splitext(video)[0] + ".jpg")
                items.append(base.checked_datum(impath, action_to_label[action], folder, where))
        return items


def action_classname(action: str) -> str:
    """``ApplyEyeMakeup`` -> ``Apply_Eye_Makeup``."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))
