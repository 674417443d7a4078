"""Streaming reader for the image-text corpus GRAM meta-trains on (CC3M-style: image files + captions).

Sources (``ImageTextCorpus(source)``):
- a manifest ``.tsv`` (tab-separated, no quoting), ``.csv`` (CSV quoting) or ``.jsonl``. Fields: the image
  path (``image_path``, ``image``, ``filepath``, ``file``, ``path`` or ``img``), the caption (``caption``,
  ``text`` or ``title``) and an optional ``id`` (or ``key``). A TSV/CSV header is optional: a first row that
  names an image column and a caption column is a header; otherwise column 0 is the image path and column 1
  the caption. Relative image paths are relative to the manifest's folder. The id is the id field when there
  is one, else the image path as written.
- a folder of webdataset-style shards ``*.tar`` (read in sorted order): consecutive members sharing a key
  (the member path up to the first dot of its file name) form one entry, an image (``.jpg``, ``.jpeg``,
  ``.png``, ``.webp``) plus a caption (``.txt``); the id is the key. A single ``.tar`` file works too.

Streaming: manifests are read line by line and shards member by member (``tarfile`` stream mode); memory
does not grow with the corpus except for one 8-byte digest per id, kept to refuse duplicate ids (a
``ValueError`` naming the id and the file and line, or shard, where it repeats).

Subsampling (``subsample=f``, 0 < f <= 1): an entry is kept iff the first 8 bytes of
``blake2b(f"{seed}:{id}")``, read as a fraction of 2**64, are below ``f``. This is a per-entry decision, so it
streams, does not depend on the corpus order, the number of workers or shards, and a smaller fraction keeps a
subset of a larger one (same seed).

Bad entries never stop a pass: a missing image (no such file, or a shard entry without an image or caption),
an undecodable one and an empty caption (nothing to pair the image with) are skipped and counted in ``.stats``
(``seen`` entries of this shard, ``subsampled_out``, ``missing``, ``corrupt``, ``yielded``, ``empty_caption``;
plus ``bad_shards`` for damaged tar files and ``lost_in_bad_shards``, the entries cut short in them), and the
counts are logged (``logging``, logger ``datasets.corpus``) when a pass ends. A damaged or truncated shard
(the data ends inside a member, or the end-of-archive blocks are missing) is reported with a warning naming
the file and the members read from it; its readable part is used. A malformed manifest line, or one that is
not UTF-8, is an input error and raises, naming the file and line.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import os
import tarfile
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from fileio.hashing import file_sha256

logger = logging.getLogger(__name__)

IMAGE_FIELDS = ("image_path", "image", "filepath", "file", "path", "img")
CAPTION_FIELDS = ("caption", "text", "title")
ID_FIELDS = ("id", "key")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXTENSION = "txt"
MANIFEST_DELIMITERS = {".tsv": "\t", ".csv": ","}
WARNED_SKIPS = 10  # skipped entries reported one by one per pass; the rest only in the final counts


@dataclass(frozen=True)
class CorpusItem:
    id: str
    image: Image.Image
    caption: str


@dataclass(frozen=True)
class LazyCorpusItem:
    """A corpus entry whose image is decoded only when ``load_image()`` is called (None if unreadable)."""

    id: str
    caption: str
    load_image: Callable[[], Image.Image | None]


@dataclass
class CorpusStats:
    seen: int = 0  # entries of this shard read from the source
    subsampled_out: int = 0
    missing: int = 0
    corrupt: int = 0
    yielded: int = 0
    empty_caption: int = 0
    bad_shards: int = 0  # tar files that could not be read to the end
    lost_in_bad_shards: int = 0  # entries of those files cut short where the data ends


@dataclass(frozen=True)
class _Entry:
    id: str
    caption: str | None
    where: str  # file:line or shard:key, for messages
    image_path: str | None = None  # manifest entries
    image_bytes: bytes | None = None  # shard entries


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def corpus_fingerprint(source: str) -> str:
    """First 16 hex digits of a sha256 that identifies a corpus wherever it is copied: the manifest's bytes, or
    for a folder of shards the relative paths and sizes of its files (hidden ones, such as the shard indexes
    ``datasets.corpus_index`` caches there, left out)."""
    if os.path.isfile(source):
        return file_sha256(source)[:16]
    digest = hashlib.sha256()
    for folder, _, names in sorted(os.walk(source)):
        for name in sorted(name for name in names if not name.startswith(".")):
            path = os.path.join(folder, name)
            digest.update(f"{os.path.relpath(path, source)}\t{os.path.getsize(path)}\n".encode("utf-8"))
    return digest.hexdigest()[:16]


def keep_fraction(entry_id: str, fraction: float, seed: int) -> bool:
    """The subsampling rule: keep iff blake2b("{seed}:{id}") / 2**64 < fraction."""
    return _digest(f"{seed}:{entry_id}") < fraction * 2**64


class ImageTextCorpus:
    """Iterates ``CorpusItem(id, image, caption)`` over a manifest or a folder of tar shards (see module doc)."""

    def __init__(self, source: str, subsample: float | None = None, seed: int = 0) -> None:
        if not os.path.exists(source):
            raise FileNotFoundError(
                f"image-text corpus {source} does not exist (expected a manifest or a folder of .tar shards)"
            )
        if subsample is not None and not 0 < subsample <= 1:
            raise ValueError(f"subsample must be a fraction in (0, 1], got {subsample}")
        self.source = source
        self.subsample = subsample
        self.seed = seed
        self.stats = CorpusStats()
        self._shards = self._find_shards()

    def _find_shards(self) -> list[str]:
        """The tar shards of the source ([] for a manifest), checking that the source is of a known kind."""
        if os.path.isdir(self.source):
            shards = sorted(os.path.join(self.source, n) for n in os.listdir(self.source) if n.endswith(".tar"))
            if not shards:
                raise FileNotFoundError(f"image-text corpus folder {self.source} holds no .tar shards")
            return shards
        extension = os.path.splitext(self.source)[1].lower()
        if extension == ".tar":
            return [self.source]
        if extension not in MANIFEST_DELIMITERS and extension not in (".jsonl", ".json"):
            raise ValueError(
                f"image-text corpus {self.source}: expected a .tsv, .csv or .jsonl manifest or .tar shards"
            )
        return []

    def __iter__(self) -> Iterator[CorpusItem]:
        return self.iterate()

    def iterate(self, shard_index: int = 0, num_shards: int = 1) -> Iterator[CorpusItem]:
        """One pass over shard ``shard_index`` of ``num_shards`` (whole tar files when there are at least as
        many as shards, else every ``num_shards``-th entry); ``.stats`` counts this pass."""
        stats = self.stats = CorpusStats()
        label = self.source if num_shards == 1 else f"{self.source} (shard {shard_index + 1}/{num_shards})"
        try:
            for entry in self._entries(shard_index, num_shards):
                stats.seen += 1
                if self.subsample is not None and not keep_fraction(entry.id, self.subsample, self.seed):
                    stats.subsampled_out += 1
                    continue
                image = self._decode(entry, stats)
                if image is not None:
                    stats.yielded += 1
                    yield CorpusItem(entry.id, image, entry.caption)
        finally:
            counts = ", ".join(f"{name}={count}" for name, count in asdict(stats).items())
            logger.info("image-text corpus %s: %s", label, counts)

    @property
    def shards(self) -> list[str]:
        """The tar shards of the source, in reading order ([] for a manifest)."""
        return list(self._shards)

    def image_paths(self) -> Iterator[tuple[str, str]]:
        """``(id, image path)`` of every manifest entry (no image is opened; nothing for tar shards)."""
        if self._shards:
            return
        for entry in self._entries(0, 1):
            if entry.image_path is not None:
                yield entry.id, entry.image_path

    def lazy(self) -> Iterator[LazyCorpusItem]:
        """One pass like ``iterate()`` (same entries, same order) that decodes no image until asked: an
        entry whose image turns out missing or corrupt is counted in ``.stats`` when it is loaded."""
        stats = self.stats = CorpusStats()
        for entry in self._entries(0, 1):
            stats.seen += 1
            if self.subsample is not None and not keep_fraction(entry.id, self.subsample, self.seed):
                stats.subsampled_out += 1
                continue
            yield LazyCorpusItem(entry.id, entry.caption or "", functools.partial(self._decode, entry, stats))

    def _decode(self, entry: _Entry, stats: CorpusStats) -> Image.Image | None:
        if entry.caption is None or (entry.image_path is None and entry.image_bytes is None):
            part = "caption" if entry.caption is None else "image"
            self._skip(stats, "missing", f"no {part} for {entry.id!r} ({entry.where})")
            return None
        if not entry.caption.strip():
            self._skip(stats, "empty_caption", f"empty caption for {entry.id!r} ({entry.where})")
            return None
        try:
            with Image.open(entry.image_path or io.BytesIO(entry.image_bytes)) as image:
                return image.convert("RGB")
        except FileNotFoundError:
            self._skip(stats, "missing", f"missing image {entry.image_path} ({entry.where})")
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            self._skip(stats, "corrupt", f"unreadable image for {entry.id!r} ({entry.where}): {error}")
        return None

    @staticmethod
    def _skip(stats: CorpusStats, kind: str, message: str) -> None:
        setattr(stats, kind, getattr(stats, kind) + 1)
        skipped = stats.missing + stats.corrupt + stats.empty_caption
        log = logger.warning if skipped <= WARNED_SKIPS else logger.debug
        log("skipping %s%s", message, "; further skips are only counted" if skipped == WARNED_SKIPS else "")

    def _unique(self, entries: Iterator[_Entry]) -> Iterator[_Entry]:
        seen_ids: set[int] = set()
        for entry in entries:
            digest = _digest(entry.id)
            if digest in seen_ids:
                raise ValueError(f"image-text corpus: duplicate id {entry.id!r} at {entry.where}")
            seen_ids.add(digest)
            yield entry

    def _entries(self, shard_index: int, num_shards: int) -> Iterator[_Entry]:
        """This shard's entries, ids checked for duplicates among everything read."""
        if self._shards and len(self._shards) >= num_shards:
            return self._unique(self._tar_entries(self._shards[shard_index::num_shards]))
        if self._shards:
            rows = self._tar_entries(self._shards)
        elif os.path.splitext(self.source)[1].lower() in MANIFEST_DELIMITERS:
            rows = self._table_rows()
        else:
            rows = self._jsonl_rows()
        return self._every_nth(rows, shard_index, num_shards)

    def _every_nth(self, entries: Iterator[_Entry], shard_index: int, num_shards: int) -> Iterator[_Entry]:
        for position, entry in enumerate(self._unique(entries)):
            if position % num_shards == shard_index:
                yield entry

    # manifests

    def _image_path(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(os.path.dirname(os.path.abspath(self.source)), path)

    def _table_rows(self) -> Iterator[_Entry]:
        delimiter = MANIFEST_DELIMITERS[os.path.splitext(self.source)[1].lower()]
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        with open(self.source, "rb") as file:
            rows = csv.reader(_utf8_lines(file, self.source), delimiter=delimiter, quoting=quoting)
            columns = None
            for row in rows:
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{self.source}:{rows.line_num}"
                if columns is None:
                    columns = _header_columns(row)
                    if columns is not None:
                        continue
                    columns = (0, 1, None)
                image_column, caption_column, id_column = columns
                if len(row) <= max(c for c in columns if c is not None):
                    raise ValueError(f"{where}: expected columns (image path, caption), got {row!r}")
                image = row[image_column].strip()
                entry_id = row[id_column].strip() if id_column is not None else image
                yield _Entry(entry_id, row[caption_column].strip(), where, image_path=self._image_path(image))

    def _jsonl_rows(self) -> Iterator[_Entry]:
        with open(self.source, "rb") as file:
            for line_number, line in enumerate(_utf8_lines(file, self.source), 1):
                if not line.strip():
                    continue
                where = f"{self.source}:{line_number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{where}: not valid JSON ({error})") from None
                image = _field(record, IMAGE_FIELDS)
                caption = _field(record, CAPTION_FIELDS)
                if image is None or caption is None:
                    raise ValueError(
                        f"{where}: expected an object with an image field {IMAGE_FIELDS} and a caption field "
                        f"{CAPTION_FIELDS}"
                    )
                entry_id = _field(record, ID_FIELDS)
                entry_id = str(entry_id) if entry_id is not None else str(image)
                yield _Entry(entry_id, str(caption), where, image_path=self._image_path(str(image)))

    # tar shards

    def _tar_entries(self, shards: list[str]) -> Iterator[_Entry]:
        for shard in shards:
            reader = _ShardReader(shard)
            try:
                yield from reader
            except (tarfile.TarError, EOFError, OSError) as error:
                reader.damage = str(error)
            if reader.damage is not None:
                self.stats.bad_shards += 1
                self.stats.lost_in_bad_shards += reader.pending_entries
                logger.warning("image-text corpus: shard %s is damaged (%s): read %d members (%d entries), lost %d "
                               "entries cut short; whatever followed in the original file is missing", shard,
                               reader.damage, reader.members_read, reader.entries_read, reader.pending_entries)


def _header_columns(row: list[str]) -> tuple[int, int, int | None] | None:
    """(image, caption, id) column indices if ``row`` is a header, else None."""
    names = [cell.strip().lower() for cell in row]

    def find(candidates: tuple[str, ...]) -> int | None:
        return next((names.index(name) for name in candidates if name in names), None)

    image, caption = find(IMAGE_FIELDS), find(CAPTION_FIELDS)
    if image is None or caption is None:
        return None
    return image, caption, find(ID_FIELDS)


def _field(record: dict, candidates: tuple[str, ...]):
    if not isinstance(record, dict):
        return None
    return next((record[name] for name in candidates if name in record), None)


def _utf8_lines(file, source: str) -> Iterator[str]:
    """The lines of a binary file decoded as UTF-8; a line that is not names the file and line."""
    for line_number, raw in enumerate(file, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{source}:{line_number}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column "
                             f"{error.start + 1}); save the manifest as UTF-8") from None


END_OF_ARCHIVE = 2 * tarfile.BLOCKSIZE  # a complete tar file ends with two zero blocks
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ")  # gzip, bzip2, xz


class _ShardReader:
    """Entries of one tar shard, member by member (stream mode). After the pass, ``damage`` says why the
    file ended early (None if it is complete), with ``members_read``, ``entries_read`` and ``pending_entries``
    (the entry whose member was being read when the data ended: lost)."""

    def __init__(self, shard: str) -> None:
        self.shard = shard
        self.damage: str | None = None
        self.members_read = self.entries_read = 0
        self.key: str | None = None
        self.parts: dict[str, bytes] = {}

    @property
    def pending_entries(self) -> int:
        return int(self.key is not None)

    def __iter__(self) -> Iterator[_Entry]:
        with tarfile.open(self.shard, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                folder, filename = os.path.split(member.name)
                stem, _, extension = filename.partition(".")
                member_key = os.path.join(folder, stem)
                if member_key != self.key:
                    yield from self._finish_entry()
                    self.key = member_key
                extension = extension.lower()
                if extension in IMAGE_EXTENSIONS or extension == CAPTION_EXTENSION:
                    self.parts[extension] = tar.extractfile(member).read()
                self.members_read += 1
            end = tar.offset
        if not self._ends_with_end_of_archive(end):  # cut between members: the last entry may lack a part
            self.damage = "truncated: the end-of-archive blocks are missing"
        yield from self._finish_entry()

    def _finish_entry(self) -> Iterator[_Entry]:
        if self.key is not None:
            self.entries_read += 1
            yield _shard_entry(self.shard, self.key, self.parts)
        self.key, self.parts = None, {}

    def _ends_with_end_of_archive(self, offset: int) -> bool:
        """True when the two zero blocks follow the last member (always for a compressed shard, whose
        stream offsets are not file offsets; its decompressor reports truncation itself)."""
        with open(self.shard, "rb") as file:
            if file.read(len(max(COMPRESSED_MAGIC, key=len))).startswith(COMPRESSED_MAGIC):
                return True
            file.seek(offset)
            tail = file.read(END_OF_ARCHIVE)
        return len(tail) == END_OF_ARCHIVE and not tail.strip(b"\0")


def _shard_entry(shard: str, key: str, parts: dict[str, bytes]) -> _Entry:
    image = next((parts[ext] for ext in IMAGE_EXTENSIONS if ext in parts), None)
    caption = parts.get(CAPTION_EXTENSION)
    caption = caption.decode("utf-8", errors="replace").strip() if caption is not None else None
    return _Entry(key, caption, f"{shard}:{key}", image_bytes=image)


class CorpusDataset(IterableDataset):
    """``{"id", "img", "caption"}`` dicts from an ``ImageTextCorpus``, ``img`` passed through ``transform``.

    Each DataLoader worker (and each distributed rank) reads its own shard of the corpus, so every entry is
    read once per epoch; each worker logs its own counts at the end of its pass.
    """

    def __init__(self, corpus: ImageTextCorpus | str, transform: Callable | None = None) -> None:
        self.corpus = corpus if isinstance(corpus, ImageTextCorpus) else ImageTextCorpus(corpus)
        self.transform = transform

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        rank, world_size = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        shard_index, num_shards = rank * num_workers + worker_id, world_size * num_workers
        for item in self.corpus.iterate(shard_index, num_shards):
            image = self.transform(item.image) if self.transform is not None else item.image
            yield {"id": item.id, "img": image, "caption": item.caption}
