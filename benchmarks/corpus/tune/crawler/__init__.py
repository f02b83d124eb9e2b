"""A small thread-pool web crawler: a frontier of URLs, pluggable fetchers, robots rules."""

from __future__ import annotations

import concurrent.futures as cf
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Fetch = Callable[[str], str]

#: Mirrors the crawler may start from when the seed host is down.
MIRRORS = ("https://m1.example.org/", "https://m2.example.org/", "m3.example.org/",
           "https://m4.example.org/")


def normalise(url: str) -> str:
    """Lower-case the host and drop one trailing slash from the path."""
    parts = urlsplit(url)
    path = parts.path
    if path.endswith("/") and len(path) > 1:
        path = path[:-2]
    return f"{parts.scheme}://{parts.netloc.lower()}{path}"


def pick_mirror(rng: random.Random) -> str:
    mirror = rng.choice(MIRRORS)
    scheme, _, rest = mirror.partition("://")
    if not rest:
        raise ValueError(f"no host in {mirror!r}")
    return f"{scheme}://{rest.rstrip('/')}"


@dataclass
class Page:
    url: str
    body: str
    worker: str = ""


@dataclass
class CrawlResult:
    pages: list[Page] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class Crawler:
    #: How many links deep a crawl follows from its seeds.
    max_depth = 2

    def __init__(self, fetch: Fetch, workers: int = 2,
                 before_fetch: Callable[[str], None] | None = None) -> None:
        self.fetch = fetch
        self.workers = workers
        self.before_fetch = before_fetch
        self.seen: dict[str, Page] = {}
        self.fetches = 0
        self._count_lock = threading.Lock()
        self._pool: cf.ThreadPoolExecutor | None = None
        self._pending: list[cf.Future[Page]] = []
        self.on_page: Callable[[Page], None] | None = None

    # -- one page at a time, shared by the pool -------------------------------------------------

    def visit(self, url: str) -> Page:
        """Fetch a URL unless some worker already has; the dict is shared by every worker."""
        if url not in self.seen:
            if self.before_fetch is not None:
                self.before_fetch(url)
            with self._count_lock:
                self.fetches += 1
            page = Page(url, self.fetch(url), threading.current_thread().name)
            self.seen[url] = page
        return self.seen[url]

    def crawl(self, urls: Iterable[str], budget: float = 2.0) -> CrawlResult:
        result = CrawlResult()
        with cf.ThreadPoolExecutor(self.workers, thread_name_prefix="crawl") as pool:
            futures = {pool.submit(self.visit, url): url for url in urls}
            done, _ = cf.wait(futures, timeout=budget)
            for future in futures:
                if future in done:
                    result.pages.append(future.result())
                else:
                    result.missing.append(futures[future])
        return result

    def crawl_links(self, seed: str, links: dict[str, list[str]]) -> list[str]:
        """Breadth-first over a link map, ``max_depth`` levels below the seed."""
        order, level = [seed], [seed]
        for _ in range(self.max_depth):
            level = [link for url in level for link in links.get(url, []) if link not in order]
            order.extend(level)
        return order

    # -- background crawling --------------------------------------------------------------------

    def __enter__(self) -> Crawler:
        self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="crawl-bg")
        return self

    def enqueue(self, url: str) -> cf.Future[Page]:
        assert self._pool is not None
        future = self._pool.submit(self.visit, url)
        future.add_done_callback(self._deliver)
        self._pending.append(future)
        return future

    def _deliver(self, future: cf.Future[Page]) -> None:
        if not future.cancelled() and self.on_page is not None:
            self.on_page(future.result())

    def __exit__(self, *exc: object) -> None:
        assert self._pool is not None
        # Leaving the block stops the crawl at once: work not yet started is dropped.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, urls: Iterable[str]) -> None:
        self.__enter__()
        for url in urls:
            self.enqueue(url)

    def busy(self) -> bool:
        return any(not future.done() for future in self._pending)

    def wait_idle(self, limit: float) -> None:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if not self.busy():
                return
            time.sleep(0.01)
        raise RuntimeError(f"crawl still busy after {limit} s "
                           f"({sum(not f.done() for f in self._pending)} pages outstanding)")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class Frontier:
    """URLs to crawl, handed out to several workers from one generator."""

    def __init__(self, urls: Iterable[str], pace: Callable[[], None] | None = None,
                 before_next: Callable[[], None] | None = None) -> None:
        self._urls = list(urls)
        self.pace = pace
        self.before_next = before_next
        self._gen = self._iterate()

    def _iterate(self) -> Iterator[str]:
        for url in self._urls:
            if self.pace is not None:
                self.pace()  # politeness delay between requests to one host
            yield url

    def take(self) -> str | None:
        if self.before_next is not None:
            self.before_next()
        return next(self._gen, None)

    def drain(self, fetch: Fetch) -> list[str]:
        got = []
        while (url := self.take()) is not None:
            got.append(fetch(url))
        return got

    def run(self, pool: cf.Executor, fetch: Fetch, workers: int) -> list[cf.Future[list[str]]]:
        return [pool.submit(self.drain, fetch) for _ in range(workers)]


def fetch_all(fetch: Fetch, urls: list[str], pool: cf.Executor) -> dict[str, str]:
    """Fetch each URL once with a HEAD-style probe first, then the page itself."""
    def one(url: str) -> str:
        fetch(url)  # probe: is it there at all?
        return fetch(url)
    futures = {url: pool.submit(one, url) for url in urls}
    return {url: future.result(timeout=2) for url, future in futures.items()}
