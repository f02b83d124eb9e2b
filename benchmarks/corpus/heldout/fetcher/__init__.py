"""An asyncio crawler for the page service (a line protocol: 'GET /path' -> '200 body')."""

from .crawler import Crawler, Page, PageServer

__all__ = ["Crawler", "Page", "PageServer"]
