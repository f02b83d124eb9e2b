from __future__ import annotations

import asyncio
import threading
from unittest.mock import AsyncMock, Mock, create_autospec

import pytest
from fetcher import Crawler, PageServer
from fetcher.crawler import crawl_site, status_of, summarize, titles
from fetcher.sync import fetch_sync


class LoopThread:
    """An event loop on a thread of its own, so several asyncio.run calls can share a server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="site-loop",
                                       daemon=True)

    def start(self) -> LoopThread:
        self.thread.start()
        return self

    def run(self, coro, timeout: float = 5.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2)
        self.loop.close()


@pytest.fixture
def site():
    loop = LoopThread().start()
    server = PageServer()
    host, port = loop.run(server.start())
    yield server, host, port
    loop.run(server.stop())
    loop.stop()


def test_fetch_returns_page(site):
    _, host, port = site
    page = asyncio.run(Crawler(host, port).fetch("/home"))
    assert (page.status, page.body) == (200, "/HOME")


def test_crawl_fetches_every_path(site):
    _, host, port = site
    pages = asyncio.run(Crawler(host, port).crawl(["/a", "/b", "/c"]))
    assert sorted(page.body for page in pages) == ["/A", "/B", "/C"]


# python/asyncio#75 (tight deadlines on loaded buildbots): asyncio.timeout around a page that
# does not come back in time.
def test_status_page_answers(site):
    _, host, port = site
    crawler = Crawler(host, port, timeout=0.2)
    assert asyncio.run(crawler.fetch("/hang")).status == 200


# python/cpython gh-128364 family: a wait_for bound that a loaded machine exceeds.
def test_slow_report_within_deadline(site, contended):
    server, host, port = site
    server.latency = 0.1 if contended else 0.0
    crawler = Crawler(host, port)
    page = asyncio.run(asyncio.wait_for(crawler.fetch("/slow-report"), 0.25))
    assert page.status == 200


# posit-dev/py-shiny#2350 and privacyidea/privacyidea#5480: results of concurrent fetches
# asserted in request order.
def test_crawl_returns_pages_in_request_order(site):
    server, host, port = site
    server.latency = 0.05
    pages = asyncio.run(Crawler(host, port).crawl(["/a", "/slow", "/b"]))
    assert [page.path for page in pages] == ["/a", "/slow", "/b"]


# Arthur-Ficial/apfel-run#5 and pmcfadin/cqlite#1149 (absolute speed thresholds): a
# pages-per-second floor equal to the theoretical maximum of the configuration.
def test_crawl_throughput_floor(site):
    server, host, port = site
    server.latency = 0.02
    crawler = Crawler(host, port, concurrency=4)
    pages = asyncio.run(crawler.crawl([f"/p{i}" for i in range(20)]))
    assert len(pages) / crawler.elapsed >= 200


# awslabs/mcp#4366: a wall-clock budget that holds when the server is idle.
def test_small_crawl_within_budget(site, contended):
    server, host, port = site
    server.latency = 0.06 if contended else 0.005
    crawler = Crawler(host, port, concurrency=4)
    asyncio.run(crawler.crawl([f"/q{i}" for i in range(8)]))
    assert crawler.elapsed < 0.1


# pytest-dev/pytest-asyncio#991 family ("... is bound to a different event loop"): an asyncio
# primitive created for one asyncio.run reused by the next.
def test_second_crawl_with_same_crawler(site):
    _, host, port = site
    crawler = Crawler(host, port)
    asyncio.run(crawler.crawl(["/first"]))
    pages = asyncio.run(crawler.crawl(["/second"]))
    assert [page.body for page in pages] == ["/SECOND"]


# Python docs on autospec: a spec taken from the base class lacks a subclass method.
def test_crawl_site_checks_robots_first():
    crawler = create_autospec(Crawler, instance=True)
    asyncio.run(crawl_site(crawler, ["/a"]))
    crawler.crawl.assert_awaited_once()


# Martiusweb/asynctest#55 family: a plain Mock used as an asynchronous context manager.
def test_titles_reads_each_page():
    session = Mock()
    session.get.return_value.text = AsyncMock(return_value="Home")
    assert asyncio.run(titles(session, ["/"])) == ["Home"]


class StatsAPI:
    def stats(self) -> dict[str, int]:
        return {"pages": 0, "errors": 0}


# A spec'd Mock returns a Mock where the code needs a dict.
def test_summary_mentions_errors():
    api = Mock(spec=StatsAPI)
    assert "errors" in summarize(api)


# python/cpython#84586 family: an AsyncMock method called without await yields a coroutine.
def test_status_of_reads_head_response():
    client = AsyncMock()
    client.head.return_value = {"status": 204}
    assert status_of(client, "/ping") == 204


# A loop thread with a refresh task scheduled on it, left running.
def test_background_refresh_is_scheduled():
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="refresh-loop", daemon=True).start()
    ticks = []

    async def refresh() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.05)

    future = asyncio.run_coroutine_threadsafe(refresh(), loop)
    assert not future.done()


# Kludex/uvicorn#1163 and python/cpython gh-124694 (event loop state restored in cleanup): a
# test sets its own loop as the current one, closes it, and leaves it set.
def test_legacy_loop_api_fetches(site):
    _, host, port = site
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    page = loop.run_until_complete(Crawler(host, port).fetch("/legacy"))
    loop.close()
    assert page.body == "/LEGACY"


def test_fetch_sync_for_scripts(site):
    _, host, port = site
    assert fetch_sync(host, port, "/cli").body == "/CLI"
