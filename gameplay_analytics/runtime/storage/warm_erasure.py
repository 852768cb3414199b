"""Privacy requests in the warm store: find or remove one player's rows in every Parquet day.

Each affected file is rewritten from the Parquet itself (the hot store has long dropped most
days), keeping the file's own schema and zstd, and swapped in whole: a rename locally, one
PUT on S3, so a reader sees the day before or after the erasure, never a half. Both datasets
are covered, events (`gameplay/`) and sessions (`gameplay_sessions/`), and any other
`*.parquet` in a day folder, whatever its name.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from gameplay_analytics.runtime.storage.objectstore import ObjectRoot
from gameplay_analytics.runtime.storage.warm import WARM_DATASETS

__all__ = ["WARM_DATASETS", "access_warm", "erase_warm", "player_files"]

_PLAYER_COLUMN: Final = "analytics_player_id"


def player_files(root: ObjectRoot) -> Iterator[tuple[str, str]]:
    """(dataset, path) of every Parquet data file of every day, temp files (dotfiles) aside."""
    fs = root.filesystem
    for dataset in WARM_DATASETS:
        selector = pafs.FileSelector(root.join(dataset), allow_not_found=True, recursive=True)
        infos = sorted(fs.get_file_info(selector), key=lambda i: i.path)
        for info in infos:
            name = info.base_name
            if info.is_file and name.endswith(".parquet") and not name.startswith("."):
                yield dataset, info.path


def _mask(table: pa.Table, player_ids: Collection[str]) -> pa.ChunkedArray | None:
    if _PLAYER_COLUMN not in table.column_names:
        return None
    return pc.is_in(table[_PLAYER_COLUMN], value_set=pa.array(sorted(player_ids), pa.string()))


def erase_warm(root: ObjectRoot, player_ids: Collection[str]) -> dict[str, int]:
    """Remove the pseudonyms' rows from every file that holds any; {dataset: rows removed}.

    Blocking (run it in a thread). The caller holds the maintenance lock, so no export can
    write a day from an older read of the hot store meanwhile."""
    removed = dict.fromkeys(WARM_DATASETS, 0)
    for dataset, path in list(player_files(root)):
        ids_only = pq.read_table(path, filesystem=root.filesystem, columns=[_PLAYER_COLUMN])
        mask = _mask(ids_only, player_ids)
        hits = 0 if mask is None else pc.sum(mask).as_py() or 0
        if not hits:
            continue
        table = pq.read_table(path, filesystem=root.filesystem)
        kept = table.filter(pc.invert(_mask(table, player_ids)))
        _replace(root, path, kept)
        removed[dataset] += hits
    return removed


def access_warm(root: ObjectRoot, player_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    """Every warm row of the pseudonyms, by dataset. Blocking."""
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in WARM_DATASETS}
    for dataset, path in player_files(root):
        table = pq.read_table(path, filesystem=root.filesystem)
        mask = _mask(table, player_ids)
        if mask is not None:
            found[dataset] += table.filter(mask).to_pylist()
    return found


def _replace(root: ObjectRoot, path: str, table: pa.Table) -> None:
    fs = root.filesystem
    folder, name = path.rsplit("/", 1)
    temp = f"{folder}/.{name}.erase-{uuid.uuid4().hex}"  # readers skip dotfiles
    target = temp if root.is_local else path  # an S3 object appears whole on completion
    try:
        with fs.open_output_stream(target) as sink:
            pq.write_table(table, sink, compression="zstd")
        if target != path:
            fs.move(target, path)
    except BaseException:
        if target != path and fs.get_file_info(target).is_file:
            fs.delete_file(target)
        raise
