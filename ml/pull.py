"""`python -m ml pull NAME`: download a registry model's GGUF from the Hugging Face hub
(huggingface_hub: progress bar, resume of a partial download; `HF_ENDPOINT` is honoured, so a mirror or
a local test server can stand in for the hub), then check the file against the hub's checksum (the
SHA-256 it reports as the file's ETag) before it is used. Nothing downloads unless asked: the worker
only looks for files (ml.registry.resolve_model).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ml.registry import REGISTRY


class PullError(RuntimeError):
    """Why a model could not be pulled (said to the person who asked)."""


@dataclass(frozen=True)
class Pulled:
    path: Path
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pull(model_id: str, models_dir: Path) -> Pulled:
    """Download (or resume) the model's file into models_dir and verify it."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    spec = REGISTRY.get(model_id)
    if spec is None:
        raise PullError(f"unknown model {model_id!r}; known: {', '.join(REGISTRY)}")
    if spec.repo_id is None:
        raise PullError(f"{model_id} is not on the hub ({spec.source})")
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        expected = get_hf_file_metadata(hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision)).etag
        path = Path(hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision, local_dir=models_dir))
    except (HfHubHTTPError, OSError) as exc:
        raise PullError(f"could not download {spec.repo_id}/{spec.filename}: {type(exc).__name__}: {exc}") from exc
    actual = sha256_of(path)
    expected = (expected or "").strip('"').removeprefix("W/").strip('"')
    if len(expected) == 64 and actual != expected:  # an LFS file's ETag is its SHA-256
        path.unlink(missing_ok=True)
        raise PullError(f"{spec.filename} does not match the hub's checksum (got {actual[:12]}…, expected "
                        f"{expected[:12]}…); it was removed, pull again")
    return Pulled(path, actual, path.stat().st_size)
