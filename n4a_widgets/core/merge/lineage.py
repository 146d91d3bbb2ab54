"""What a merge does to runs, pipelines, chains and artifacts (the models), planned read-only.

A merged prediction must stay usable: ``nirs4all.predict(chain_id=<chain in
the target>, ...)`` replays its chain, which names its fitted models by
artifact id (``steps[].artifact_id``, ``fold_artifacts``, ``shared_artifacts``).
So each source chain a merged prediction uses is copied with its steps, and
each artifact it names is carried over, deduplicated by content:

- the target already holds an artifact with the same ``content_hash`` and
  format: the chain is pointed at that one (no row, no byte added);
- else the artifact is registered under its source id (a fresh id if the
  target uses that id for other content), and its file is copied unless the
  content-addressed file is already there.

What a merge removes is predicted the way nirs4all will do it: a target chain
whose predictions are all replaced is pruned, and an artifact goes only when
its reference count, after nirs4all's own repair (``max(ref_count, chains
naming it)``) and the decrements of the pruned chains, reaches zero.  An
artifact that any surviving or new chain names can therefore never go; the
execution re-runs that repair before its one garbage collection to make sure.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import layout

#: Chains and artifacts listed in detail in a report (counts are always exact).
LINEAGE_SAMPLE = 200


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, TypeError):
            return None
    return value


def chain_refs(chain: dict[str, Any]) -> set[str]:
    """Artifact ids a chain holds a reference on, as nirs4all counts them (fold + shared)."""
    ids: set[str] = set()
    fold = _loads(chain.get("fold_artifacts"))
    shared = _loads(chain.get("shared_artifacts"))
    if isinstance(fold, dict):
        ids.update(v for v in fold.values() if isinstance(v, str) and v)
    if isinstance(shared, dict):
        for key, v in shared.items():
            if str(key).startswith("_"):
                continue
            if isinstance(v, list):
                ids.update(a for a in v if isinstance(a, str) and a)
            elif isinstance(v, str) and v:
                ids.add(v)
    return ids


def chain_artifact_ids(chain: dict[str, Any]) -> set[str]:
    """Every artifact id a chain names: its references plus each step's ``artifact_id``."""
    ids = chain_refs(chain)
    steps = _loads(chain.get("steps"))
    if isinstance(steps, list):
        ids.update(s["artifact_id"] for s in steps if isinstance(s, dict) and isinstance(s.get("artifact_id"), str))
    return ids


def remap(value: Any, mapping: dict[str, str]) -> Any:
    """``value`` (decoded JSON) with every string equal to a mapped artifact id replaced."""
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, list):
        return [remap(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: remap(v, mapping) for k, v in value.items()}
    return value


def safe_artifact_path(rel: Any) -> str | None:
    """The relative path if it stays inside ``artifacts/`` (a source may be an untrusted archive)."""
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return None
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        return None
    return pure.as_posix()


@dataclass
class ArtifactAdd:
    """A source artifact registered in the target (its file copied when ``copy``)."""

    new_id: str
    source_index: int
    row: dict[str, Any]
    rel_path: str
    copy: bool


@dataclass
class LineagePlan:
    maps: list[dict[str, str]]
    """Per source: source artifact id -> target artifact id, for every id its merged chains name."""
    adds: dict[str, ArtifactAdd]
    chains_added: list[dict[str, Any]]
    chains_removed: list[dict[str, Any]]
    artifacts_added: list[dict[str, Any]]
    artifacts_removed: list[dict[str, Any]]
    artifact_bytes_added: int
    artifact_bytes_removed: int
    errors: list[list[str]] = field(default_factory=list)


def plan_lineage(
    root: Path,
    infos: list[Any],
    writes: list[Any],
    target_chains: dict[str, dict[str, Any]],
    target_artifacts: dict[str, dict[str, Any]],
    target_chain_of: dict[str, str],
    target_chain_counts: dict[str, int],
    new_id: Any,
) -> LineagePlan:
    """Plan chains and artifacts for the surviving adds in ``writes`` (``_DatasetWrite``s, in write order)."""
    art_dir = root / layout.ARTIFACTS_DIR
    # Reuse a target model only when its file is there (a row whose file is gone could not replay).
    by_content = {(a["content_hash"], a["format"]): aid for aid, a in target_artifacts.items()
                  if a["content_hash"] and safe_artifact_path(a["artifact_path"])
                  and (art_dir / a["artifact_path"]).is_file()}
    planned_paths: set[str] = set()
    adds: dict[str, ArtifactAdd] = {}
    maps: list[dict[str, str]] = [{} for _ in infos]
    errors: list[list[str]] = [[] for _ in infos]
    chains_added: list[dict[str, Any]] = []
    new_refs_by_ds: dict[str, list[set[str]]] = collections.defaultdict(list)
    seen_chains: set[tuple[int, str]] = set()
    index_of = {id(info): i for i, info in enumerate(infos)}

    def map_artifact(si: int, aid: str) -> None:
        info = infos[si]
        src = info.artifacts.get(aid)
        rel = safe_artifact_path(src.get("artifact_path")) if src else None
        src_file = (info.path / layout.ARTIFACTS_DIR / rel) if rel else None
        if src is None or rel is None or src_file is None or not src_file.is_file():
            why = "is not in its store" if src is None else "has an unsafe path" if rel is None else "has no file"
            errors[si].append(f"Artifact {aid} named by a merged chain {why} in the source; that chain cannot "
                              "replay there either.")
            maps[si][aid] = new_id(si, f"missing-artifact:{aid}")  # dangling, never another model
            return
        key = (src["content_hash"], src["format"])
        if src["content_hash"] and key in by_content:
            maps[si][aid] = by_content[key]
            return
        target_id = aid if aid not in target_artifacts and aid not in adds else new_id(si, f"artifact:{aid}")
        copy = rel not in planned_paths and not (art_dir / rel).exists()
        planned_paths.add(rel)
        adds[target_id] = ArtifactAdd(target_id, si, src, rel, copy)
        if src["content_hash"]:
            by_content[key] = target_id
        maps[si][aid] = target_id

    for write in writes:
        for info, part_adds, _ in write.parts:
            si = index_of[id(info)]
            per_chain = collections.Counter(row["chain_id"] for row, _ in part_adds)
            for chain_id, n in per_chain.items():
                if (si, chain_id) in seen_chains:
                    continue
                seen_chains.add((si, chain_id))
                chain = info.chains.get(chain_id) or {}
                for aid in sorted(chain_artifact_ids(chain)):
                    if aid not in maps[si]:
                        map_artifact(si, aid)
                new_refs_by_ds[write.dataset].append({maps[si].get(a, a) for a in chain_refs(chain)})
                chains_added.append({
                    "source": info.name, "source_chain_id": chain_id, "dataset": write.dataset,
                    "model_class": chain.get("model_class") or "", "preprocessings": chain.get("preprocessings") or "",
                    "predictions": n, "artifacts": len(chain_artifact_ids(chain)),
                })

    # Target chains pruned: every prediction of the chain is replaced.
    removed_by_chain: collections.Counter[str] = collections.Counter()
    removed_ds: dict[str, set[str]] = collections.defaultdict(set)
    for write in writes:
        for pid in write.removes:
            cid = target_chain_of.get(pid)
            if cid:
                removed_by_chain[cid] += 1
                removed_ds[write.dataset].add(cid)
    pruned = {cid for cid, n in removed_by_chain.items() if n >= target_chain_counts.get(cid, 0)}
    chains_removed = [{
        "chain_id": cid, "dataset": target_chains.get(cid, {}).get("dataset_name") or "",
        "model_class": target_chains.get(cid, {}).get("model_class") or "",
        "preprocessings": target_chains.get(cid, {}).get("preprocessings") or "",
        "predictions": target_chain_counts.get(cid, 0),
    } for cid in sorted(pruned)]

    # nirs4all's reference counting, dataset write by dataset write (see the module docstring).
    rc = {aid: int(a.get("ref_count") or 0) for aid, a in target_artifacts.items()}
    rc.update({aid: 1 for aid in adds})
    present: dict[Any, set[str]] = {cid: chain_refs(c) for cid, c in target_chains.items()}
    any_delete = False
    for k, write in enumerate(writes):
        for j, refs in enumerate(new_refs_by_ds.pop(write.dataset, [])):
            present[("new", k, j)] = refs
        if not write.removes:
            continue
        any_delete = True
        counts = collections.Counter(a for refs in present.values() for a in refs)
        for aid, n in counts.items():
            if aid in rc:
                rc[aid] = max(rc[aid], n)
        for cid in removed_ds.get(write.dataset, set()) & pruned:
            for aid in present.pop(cid, set()):
                if aid in rc:
                    rc[aid] -= 1
    removed_ids = sorted(a for a, n in rc.items() if n <= 0 and a in target_artifacts) if any_delete else []
    live_paths = {target_artifacts[a]["artifact_path"] for a, n in rc.items() if n > 0 and a in target_artifacts}
    live_paths |= {add.rel_path for add in adds.values()}
    bytes_removed = 0
    gone_paths: set[str] = set()
    artifacts_removed = []
    for aid in removed_ids:
        a = target_artifacts[aid]
        size = int(a.get("size_bytes") or 0)
        frees = a["artifact_path"] not in live_paths and a["artifact_path"] not in gone_paths
        gone_paths.add(a["artifact_path"])
        bytes_removed += size if frees else 0
        artifacts_removed.append({"artifact_id": aid, "operator_class": a.get("operator_class") or "",
                                  "artifact_type": a.get("artifact_type") or "", "size_bytes": size})
    artifacts_added = [{
        "artifact_id": add.new_id, "source": infos[add.source_index].name,
        "operator_class": add.row.get("operator_class") or "", "artifact_type": add.row.get("artifact_type") or "",
        "size_bytes": int(add.row.get("size_bytes") or 0) if add.copy else 0,
    } for add in adds.values()]
    return LineagePlan(
        maps=maps, adds=adds, chains_added=chains_added, chains_removed=chains_removed,
        artifacts_added=artifacts_added, artifacts_removed=artifacts_removed,
        artifact_bytes_added=sum(a["size_bytes"] for a in artifacts_added),
        artifact_bytes_removed=bytes_removed, errors=errors,
    )
