"""Where segment files live: a local directory (written durably: fsync of the file and of its directory) or an
S3-compatible bucket (durable once the store acknowledges the upload). Both are named by URL."""

import asyncio
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import obstore
from obstore.store import S3Store


class SegmentFiles(Protocol):
    url: str

    async def put(self, name: str, data: bytes) -> str:
        """Store `data` under `name`, durably when it returns; returns the file's full URL."""
        ...

    async def listed(self, folder: str) -> list[str]:
        """Full URLs of the files under `folder`."""
        ...

    async def delete(self, url: str) -> None: ...


class MissingSegment(Exception):
    """A segment file the manifest names cannot be found."""


class LocalFiles:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    async def put(self, name: str, data: bytes) -> str:
        return await asyncio.to_thread(self._put, name, data)

    def _put(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return path.as_uri()

    async def listed(self, folder: str) -> list[str]:
        directory = self.root / folder
        return [p.as_uri() for p in directory.iterdir() if p.is_file()] if directory.is_dir() else []

    async def delete(self, url: str) -> None:
        Path(unquote(urlparse(url).path)).unlink(missing_ok=True)


class BucketFiles:
    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.store = _bucket(self.bucket)

    async def put(self, name: str, data: bytes) -> str:
        key = f"{self.prefix}/{name}" if self.prefix else name
        await obstore.put_async(self.store, key, data)
        return f"s3://{self.bucket}/{key}"

    async def listed(self, folder: str) -> list[str]:
        prefix = f"{self.prefix}/{folder}" if self.prefix else folder
        return [f"s3://{self.bucket}/{meta['path']}" for batch in obstore.list(self.store, prefix) for meta in batch]

    async def delete(self, url: str) -> None:
        await obstore.delete_async(self.store, urlparse(url).path.lstrip("/"))


def _bucket(bucket: str) -> S3Store:
    """A client of the bucket, configured from the usual AWS_* variables (AWS_ENDPOINT_URL for a local server)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT") or ""
    return S3Store(bucket, client_options={"allow_http": endpoint.startswith("http://")})


def open_files(url: str) -> SegmentFiles:
    """`s3://bucket/prefix` or a directory (a path or `file://` URL)."""
    if url.startswith("s3://"):
        return BucketFiles(url)
    return LocalFiles(Path(unquote(urlparse(url).path) if url.startswith("file://") else url))


_buckets: dict[str, S3Store] = {}


async def read_file(url: str) -> bytes:
    """The bytes of a segment file named by its full URL; MissingSegment when it is not there."""
    try:
        if url.startswith("s3://"):
            parsed = urlparse(url)
            store = _buckets.get(parsed.netloc) or _buckets.setdefault(parsed.netloc, _bucket(parsed.netloc))
            result = await obstore.get_async(store, parsed.path.lstrip("/"))
            return bytes(await result.bytes_async())
        return await asyncio.to_thread(Path(unquote(urlparse(url).path)).read_bytes)
    except (FileNotFoundError, obstore.exceptions.NotFoundError) as exc:
        raise MissingSegment(url) from exc
