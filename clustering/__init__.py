"""GRAM's clustering stage: CLIP features of an image-text corpus -> domains (flat or CMHC) -> split file.

Modules: ``encode`` (resumable CLIP feature cache), ``features`` (validation, joint features),
``kmeans`` (FAISS k-means), ``cmhc`` (Cross-Modal Hierarchical Clustering), ``stats`` and
``complexity`` (prototypes, structure complexity), ``build`` (the pipeline), ``split_file``
(versioned on-disk format) and ``task_sampler`` (cross-cluster meta-tasks).
"""
from .build import ClusteringSettings, build_split
from .encode import EncodedCorpus, EncodingError, corpus_source_key, encode_corpus, load_encoded
from .features import FeatureError
from .split_file import ClusterLevel, ClusterSplit, SplitFileError, load_split, save_split
from .task_sampler import Task, TaskSampler

__all__ = [
    "ClusteringSettings", "build_split", "EncodedCorpus", "EncodingError", "corpus_source_key", "encode_corpus",
    "load_encoded", "FeatureError", "ClusterLevel", "ClusterSplit", "SplitFileError", "load_split", "save_split",
    "Task", "TaskSampler",
]
