"""Write the toy world to disk: downstream datasets in CoOp's layout and the meta-training corpus.

Layout under the data root (``DATASET.ROOT``)::

    toy_world.json                                  what was built (settings, fingerprint, counts)
    toy_shapes/images/<class_folder>/<split>_<i>.png   one folder per class (spaces -> underscores)
    toy_shapes/split_zhou_ToyShapes.json            CoOp's split file: [path under images/, label, classname]
    ...                                             every dataset of specs.DATASET_SPECS
    toy_corpus/images/<shard>/<i>.png               image-text pairs
    toy_corpus/captions.tsv                         manifest "image_path<TAB>caption" (paths relative to it)
    toy_corpus/metadata.tsv                         attributes of every corpus image (labels, for analysis)
    toy_heldout.json, toy_size_shapes/, ...         the held-out class sets (``build_heldout_datasets``)

The corpus comes in contrast groups of ``CORPUS_GROUP_SIZE`` consecutive images that differ in one attribute
(``scenes.sample_contrast_group``); group ``g`` is drawn in style ``STYLES[g % 5]``, so the styles (domains)
are equally represented.

Every image has its own random generator, seeded by (world seed, stream, label, index), so the world is the
same byte for byte whatever the order or number of worker processes, and the corpus shares no random stream
with any downstream dataset (their images differ; their attribute combinations overlap, as a web corpus
overlaps a benchmark's concepts). The stamp file is written last: a world whose stamp matches the requested
settings is reused, anything else (no stamp, an interrupted build, other settings) is rebuilt from scratch.
"""
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
from dassl.data.datasets import Datum
from PIL import Image
from tqdm import tqdm

from datasets.base import save_split
from fileio.atomic import write_atomically
from datasets.toy_world.captions import caption_scene
from datasets.toy_world.presets import WorldSize, resolve_world_size
from datasets.toy_world.render import render_scene
from datasets.toy_world.scenes import ATTRIBUTE_VALUES, Scene, sample_contrast_group
from datasets.toy_world.specs import DATASET_SPECS, HELDOUT_SPECS, ToyDatasetSpec
from datasets.toy_world.vocabulary import STYLES

GENERATOR_VERSION = 2
STAMP_FILENAME = "toy_world.json"
HELDOUT_STAMP_FILENAME = "toy_heldout.json"
HELDOUT_SEED = 2026  # the held-out class sets' own generator seed (not the world's)
CORPUS_DIR = "toy_corpus"
CORPUS_MANIFEST = "captions.tsv"
CORPUS_METADATA = "metadata.tsv"
CORPUS_STREAM = "corpus"
CORPUS_GROUP_STREAM = "corpus groups"
CORPUS_GROUP_SIZE = 4
CORPUS_SHARD_SIZE = 1000
SPLITS = ("train", "val", "test")
RESOLUTIONS = (32, 64)


@dataclass(frozen=True)
class WorldInfo:
    """Where the world is and what it holds. ``build_seconds`` is the time of the build that wrote it."""

    root: str
    seed: int
    size: str
    resolution: int
    fingerprint: str
    dataset_dirs: Dict[str, str]
    corpus_manifest: str
    corpus_metadata: str
    num_images: Dict[str, int]
    build_seconds: float
    reused: bool


@dataclass(frozen=True)
class ImageJob:
    """One image to draw: ``stream`` is ``"<Dataset>/<split>"`` or ``"corpus"``."""

    stream: str
    label: int
    index: int
    path: str


def world_fingerprint(seed: int, size: WorldSize, resolution: int) -> str:
    """Hash of everything that decides the world's bytes (first 16 hex digits of a sha256)."""
    settings = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "images_per_class": size.images_per_class,
        "shifted_test_per_class": size.shifted_test_per_class,
        "corpus_images": size.corpus_images,
        "resolution": resolution,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def image_rng(seed: int, job: ImageJob) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(job.stream.encode()), job.label, job.index])


def draw_job(seed: int, resolution: int, job: ImageJob) -> Tuple[np.ndarray, Scene, str]:
    """The image, scene and caption of one job (nothing written)."""
    rng = image_rng(seed, job)
    if job.stream == CORPUS_STREAM:
        group = job.index // CORPUS_GROUP_SIZE
        group_rng = np.random.default_rng([seed, zlib.crc32(CORPUS_GROUP_STREAM.encode()), group])
        scenes = sample_contrast_group(group_rng, STYLES[group % len(STYLES)], CORPUS_GROUP_SIZE)
        scene = scenes[job.index % CORPUS_GROUP_SIZE]
    else:
        name = job.stream.split("/")[0]
        spec = DATASET_SPECS[name] if name in DATASET_SPECS else HELDOUT_SPECS[name]
        scene = spec.draw(job.label, rng, spec.style)
    image = render_scene(scene, rng, resolution)
    return image, scene, caption_scene(scene, rng)


def _write_job(arguments: Tuple[int, int, ImageJob]) -> Tuple[Scene, str]:
    seed, resolution, job = arguments
    image, scene, caption = draw_job(seed, resolution, job)
    Image.fromarray(image).save(job.path, format="PNG")
    return scene, caption


def _split_counts(spec: ToyDatasetSpec, size: WorldSize) -> Dict[str, int]:
    if spec.test_only:
        return {"train": 0, "val": 0, "test": size.shifted_test_per_class}
    return dict(zip(SPLITS, size.images_per_class))


def dataset_jobs(spec: ToyDatasetSpec, root: str, size: WorldSize) -> Dict[str, List[ImageJob]]:
    """The images of every split of ``spec``, class by class."""
    image_dir = os.path.join(root, spec.dataset_dir, "images")
    jobs = {}
    for split, per_class in _split_counts(spec, size).items():
        jobs[split] = [
            ImageJob(f"{spec.name}/{split}", label, index,
                     os.path.join(image_dir, spec.class_folder(label), f"{split}_{index:04d}.png"))
            for label in range(len(spec.classnames))
            for index in range(per_class)
        ]
    return jobs


def corpus_jobs(root: str, size: WorldSize) -> List[ImageJob]:
    image_dir = os.path.join(root, CORPUS_DIR, "images")
    return [
        ImageJob(CORPUS_STREAM, 0, index,
                 os.path.join(image_dir, f"{index // CORPUS_SHARD_SIZE:03d}", f"{index:06d}.png"))
        for index in range(size.corpus_images)
    ]


def _run_jobs(jobs: List[ImageJob], seed: int, resolution: int, workers: int, progress: bool) -> List[Tuple[Scene, str]]:
    for folder in sorted({os.path.dirname(job.path) for job in jobs}):
        os.makedirs(folder, exist_ok=True)
    arguments = [(seed, resolution, job) for job in jobs]
    # fork: the workers run only numpy and PIL, never torch, so forking a process that imported torch is safe.
    use_pool = workers > 1 and "fork" in multiprocessing.get_all_start_methods()
    with multiprocessing.get_context("fork").Pool(workers) if use_pool else contextlib.nullcontext() as pool:
        drawn = pool.imap(_write_job, arguments, chunksize=64) if use_pool else map(_write_job, arguments)
        return list(tqdm(drawn, total=len(arguments), desc="toy world images", unit="img", disable=not progress,
                         leave=False))


def _describe(scene: Scene) -> str:
    return " + ".join(
        f"{group.count} {group.size} {group.colour} {group.texture} {group.shape}" for group in scene.groups
    )


def _write_tsv(path: str, header: Tuple[str, ...], rows: Iterator[Tuple[str, ...]]) -> None:
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    write_atomically(path, lambda file: file.write("\n".join(lines) + "\n"))


def _write_corpus_tables(corpus_dir: str, jobs: List[ImageJob], drawn: List[Tuple[Scene, str]]) -> None:
    """The manifest (image path, caption) and the metadata (image path, attributes, objects) of the corpus."""
    relative = [os.path.relpath(job.path, corpus_dir) for job in jobs]
    _write_tsv(os.path.join(corpus_dir, CORPUS_MANIFEST), ("image_path", "caption"),
               ((path, caption) for path, (_, caption) in zip(relative, drawn)))
    _write_tsv(os.path.join(corpus_dir, CORPUS_METADATA), ("image_path",) + tuple(ATTRIBUTE_VALUES) + ("objects",),
               ((path,) + tuple(scene.attributes()[name] for name in ATTRIBUTE_VALUES) + (_describe(scene),)
                for path, (scene, _) in zip(relative, drawn)))


def _write_split_file(spec: ToyDatasetSpec, root: str, jobs: Dict[str, List[ImageJob]]) -> None:
    image_dir = os.path.join(root, spec.dataset_dir, "images")
    splits = [
        [Datum(impath=job.path, label=job.label, classname=spec.classnames[job.label]) for job in jobs[split]]
        for split in SPLITS
    ]
    save_split(*splits, os.path.join(root, spec.dataset_dir, spec.split_filename), image_dir)


def _read_stamp(path: str) -> Optional[dict]:
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, json.JSONDecodeError):
        return None


def _info_from_stamp(root: str, stamp: dict, reused: bool) -> WorldInfo:
    corpus_dir = os.path.join(root, CORPUS_DIR)
    return WorldInfo(
        root=root,
        seed=stamp["seed"],
        size=stamp["size"],
        resolution=stamp["resolution"],
        fingerprint=stamp["fingerprint"],
        dataset_dirs={name: os.path.join(root, spec.dataset_dir) for name, spec in DATASET_SPECS.items()},
        corpus_manifest=os.path.join(corpus_dir, CORPUS_MANIFEST),
        corpus_metadata=os.path.join(corpus_dir, CORPUS_METADATA),
        num_images=stamp["num_images"],
        build_seconds=stamp["build_seconds"],
        reused=reused,
    )


def build_world(
    root: str,
    seed: int = 0,
    size: Union[str, WorldSize] = "default",
    resolution: int = 32,
    workers: Optional[int] = None,
    progress: bool = True,
) -> WorldInfo:
    """Generate the toy world under ``root`` (or reuse the one there if it was built with these settings).

    ``size``: a preset name of ``presets.WORLD_SIZES`` or a ``WorldSize``. ``workers``: image-drawing
    processes (default: up to 2, the CPU count permitting); the output does not depend on it.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"toy world resolution must be one of {RESOLUTIONS}, got {resolution}")
    preset = resolve_world_size(size)
    if preset.corpus_images % CORPUS_GROUP_SIZE:
        raise ValueError(f"corpus_images={preset.corpus_images} must be a multiple of {CORPUS_GROUP_SIZE}")
    root = os.path.abspath(os.path.expanduser(root))
    fingerprint = world_fingerprint(seed, preset, resolution)
    stamp_path = os.path.join(root, STAMP_FILENAME)
    stamp = _read_stamp(stamp_path)
    if stamp is not None and stamp.get("fingerprint") == fingerprint:
        return _info_from_stamp(root, stamp, reused=True)

    started = time.time()
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    for folder in [spec.dataset_dir for spec in DATASET_SPECS.values()] + [CORPUS_DIR]:
        shutil.rmtree(os.path.join(root, folder), ignore_errors=True)
    jobs_by_dataset = {name: dataset_jobs(spec, root, preset) for name, spec in DATASET_SPECS.items()}
    corpus = corpus_jobs(root, preset)
    all_jobs = [job for jobs in jobs_by_dataset.values() for split in SPLITS for job in jobs[split]] + corpus
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    results = _run_jobs(all_jobs, seed, resolution, workers, progress)

    for name, jobs in jobs_by_dataset.items():
        _write_split_file(DATASET_SPECS[name], root, jobs)
    _write_corpus_tables(os.path.join(root, CORPUS_DIR), corpus, results[len(all_jobs) - len(corpus):])

    num_images = {name: sum(len(jobs[split]) for split in SPLITS) for name, jobs in jobs_by_dataset.items()}
    num_images[CORPUS_STREAM] = len(corpus)
    stamp = {
        "fingerprint": fingerprint,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": preset.name,
        "resolution": resolution,
        "num_images": num_images,
        "build_seconds": round(time.time() - started, 2),
    }
    write_atomically(stamp_path, lambda file: json.dump(stamp, file, indent=2))
    return _info_from_stamp(root, stamp, reused=False)


def build_heldout_datasets(root: str, seed: int = HELDOUT_SEED, size: Union[str, WorldSize, None] = None,
                           workers: Optional[int] = None, progress: bool = True) -> Dict[str, str]:
    """Write the held-out class sets (``specs.HELDOUT_SPECS``) beside the world built under ``root``, at its
    resolution, with its size preset (or ``size``) and their own generator ``seed``; return their folders.

    They have their own stamp (``HELDOUT_STAMP_FILENAME``), so adding them neither rebuilds the world nor
    invalidates its CLIP, and a second call with the same settings writes nothing.
    """
    root = os.path.abspath(os.path.expanduser(root))
    world = _read_stamp(os.path.join(root, STAMP_FILENAME))
    if world is None:
        raise FileNotFoundError(f"{root}: no toy world ({STAMP_FILENAME}) to add the held-out class sets to; "
                                "run make_toy_world.py first")
    preset = resolve_world_size(size if size is not None else world["size"])
    settings = {"world": world["fingerprint"], "seed": seed, "images_per_class": preset.images_per_class,
                "datasets": sorted(HELDOUT_SPECS)}
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folders = {name: os.path.join(root, spec.dataset_dir) for name, spec in HELDOUT_SPECS.items()}
    stamp_path = os.path.join(root, HELDOUT_STAMP_FILENAME)
    stamp = _read_stamp(stamp_path)
    if stamp is not None and stamp.get("fingerprint") == fingerprint:
        return folders
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
    jobs_by_dataset = {name: dataset_jobs(spec, root, preset) for name, spec in HELDOUT_SPECS.items()}
    all_jobs = [job for jobs in jobs_by_dataset.values() for split in SPLITS for job in jobs[split]]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    _run_jobs(all_jobs, seed, world["resolution"], workers, progress)
    for name, jobs in jobs_by_dataset.items():
        _write_split_file(HELDOUT_SPECS[name], root, jobs)
    write_atomically(stamp_path, lambda file: json.dump({"fingerprint": fingerprint, "seed": seed}, file, indent=2))
    return folders
