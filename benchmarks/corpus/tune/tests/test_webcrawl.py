from __future__ import annotations

import concurrent.futures as cf
import random
import threading
import time
from collections import Counter
from unittest.mock import Mock

from crawler import Crawler, Frontier, fetch_all, normalise, pick_mirror


def body_of(url: str) -> str:
    return f"<html>{url}</html>"


def test_visit_fetches_each_page_once_in_sequence():
    crawler = Crawler(body_of)
    for url in ["https://a.example/", "https://b.example/", "https://a.example/"]:
        crawler.visit(url)
    assert crawler.fetches == 2


def test_normalise_keeps_the_root_path():
    assert normalise("https://Example.ORG/") == "https://example.org/"


# Lu et al. ASPLOS 2008 (atomicity violation, check-then-act) and Luo et al. FSE 2014,
# Concurrency: two pool workers both find the URL missing from the shared dict before either
# stores its page, and the page is fetched twice.
def test_duplicate_links_are_fetched_once():
    both_checked = threading.Barrier(2, timeout=2)
    calls: Counter[str] = Counter()

    def fetch(url: str) -> str:
        calls[url] += 1
        return body_of(url)

    crawler = Crawler(fetch, workers=2, before_fetch=lambda url: both_checked.wait())
    crawler.crawl(["https://a.example/news", "https://a.example/news"])
    assert calls["https://a.example/news"] == 1


# PEP 255 / Python docs (a generator cannot be resumed while it is running) and the many
# "generator already executing" reports from iterators shared across worker threads: two
# workers pull from one generator, one of them while the other is paused inside it.
def test_workers_share_the_frontier():
    inside, other_finished = threading.Event(), threading.Event()
    takes, paces = [0], [0]
    lock = threading.Lock()

    def before_next() -> None:
        with lock:
            takes[0] += 1
            second = takes[0] == 2
        if second:
            inside.wait(1)

    def pace() -> None:
        paces[0] += 1
        if paces[0] == 1:
            inside.set()
            other_finished.wait(1)

    frontier = Frontier([f"https://a.example/{n}" for n in range(4)], pace=pace,
                        before_next=before_next)
    with cf.ThreadPoolExecutor(2, thread_name_prefix="frontier") as pool:
        futures = frontier.run(pool, body_of, workers=2)
        for future in futures:
            future.add_done_callback(lambda _: other_finished.set())
        pages = [page for future in futures for page in future.result(timeout=2)]
    assert len(pages) == 4


# Python docs, Executor.shutdown(cancel_futures=True), and Luo et al. FSE 2014 (Async Wait):
# leaving the crawler's context cancels the work that had not started, so its page callback
# never runs although the test reads the pages right after the block.
def test_pages_enqueued_before_leaving_are_delivered():
    started, release = threading.Event(), threading.Event()
    pages: list[str] = []

    def fetch(url: str) -> str:
        if url.endswith("/a"):
            started.set()
            release.wait(1)
        return body_of(url)

    with Crawler(fetch) as crawler:
        crawler.on_page = lambda page: pages.append(page.url)
        crawler.enqueue("https://a.example/a")
        second = crawler.enqueue("https://a.example/b")
        second.add_done_callback(lambda _: release.set())
        started.wait(1)
    assert pages == ["https://a.example/a", "https://a.example/b"]


# Luo et al. FSE 2014, Async Wait (a polling loop against a deadline shorter than the work):
# one host stalls, and the crawl is still busy when the poll gives up.
def test_background_crawl_goes_idle():
    release = threading.Event()

    def fetch(url: str) -> str:
        if "slow" in url:
            release.wait(2)
        return body_of(url)

    crawler = Crawler(fetch, workers=2)
    try:
        crawler.start(["https://a.example/", "https://slow.example/"])
        crawler.wait_idle(0.2)
    finally:
        release.set()
        crawler.close()


# Eck et al. FSE 2019 (test case timeout) with concurrent.futures.wait(timeout=): a host that
# answers after 0.5 s, a crawl budget of 0.2 s.
def test_crawl_within_budget_gets_every_page():
    def fetch(url: str) -> str:
        if "slow" in url:
            threading.Event().wait(0.5)
        return body_of(url)

    result = Crawler(fetch, workers=2).crawl(["https://a.example/", "https://slow.example/"],
                                             budget=0.2)
    assert result.missing == []


# Eck et al. FSE 2019 (too restrictive range) / Shaker, Silva et al. ICSME 2020: a throughput
# bound that four workers with 20 ms per request cannot reach; the crawl itself is correct.
def test_crawl_throughput():
    def fetch(url: str) -> str:
        time.sleep(0.02)  # the simulated round trip
        return body_of(url)

    urls = [f"https://a.example/{n}" for n in range(20)]
    began = time.perf_counter()
    result = Crawler(fetch, workers=4).crawl(urls)
    rate = len(result.pages) / (time.perf_counter() - began)
    assert rate > 1000


# Gruber et al. ICST 2021 (Python flaky tests, concurrency: assumptions about scheduling): a
# pool does not hand out work evenly; one worker is held by a slow page while the others take
# the rest.
def test_pages_are_spread_evenly_over_workers():
    others_done = threading.Event()
    fetched = [0]
    lock = threading.Lock()

    def fetch(url: str) -> str:
        if url.endswith("/0"):
            others_done.wait(1)
        else:
            with lock:
                fetched[0] += 1
                if fetched[0] == 19:
                    others_done.set()
        return body_of(url)

    result = Crawler(fetch, workers=4).crawl([f"https://a.example/{n}" for n in range(20)])
    per_worker = Counter(page.worker for page in result.pages)
    assert sorted(per_worker.values()) == [5, 5, 5, 5]


# pytest-dev/pytest-mock#287 and the unittest.mock docs (side_effect iterable exhausted raises
# StopIteration): the stub has one page per URL, but each URL is requested twice (probe and
# page), here from pool threads.
def test_fetch_all_returns_each_body():
    urls = ["https://a.example/1", "https://a.example/2"]
    fetch = Mock(side_effect=[body_of(url) for url in urls])
    with cf.ThreadPoolExecutor(1, thread_name_prefix="fetch-all") as pool:
        bodies = fetch_all(fetch, urls, pool)
    assert bodies == {url: body_of(url) for url in urls}


# Shi et al. FSE 2019 (iFixFlakies) polluter: a class attribute changed for one test's shallow
# crawl and never put back.
def test_docs_site_is_crawled_one_level_deep():
    Crawler.max_depth = 1
    links = {"/": ["/docs", "/blog"], "/docs": ["/docs/api"]}
    assert Crawler(body_of).crawl_links("/", links) == ["/", "/docs", "/blog"]


def test_crawl_follows_links_two_levels():
    links = {"/": ["/docs"], "/docs": ["/docs/api"], "/docs/api": ["/docs/api/v2"]}
    assert Crawler(body_of).crawl_links("/", links) == ["/", "/docs", "/docs/api"]


# An ordinary slicing bug (sequential code): dropping "one" trailing slash cuts two characters.
def test_normalise_drops_trailing_slash():
    assert normalise("https://Example.org/docs/") == "https://example.org/docs"


# Luo et al. FSE 2014, Randomness, and Gruber et al. ICST 2021 (randomness): the mirror is
# drawn at random and one entry of the list is malformed; only some seeds draw it.
def test_random_mirror_is_a_url(contended):
    rng = random.Random(5 if contended else 2)
    assert pick_mirror(rng).startswith("https://")
