"""Structured logging for services that embed the cache."""

from __future__ import annotations

import json
import logging

#: Lines handed to the log shipper (a list here; a socket in production).
SHIPPED: list[str] = []


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"level": record.levelname, "msg": record.getMessage()})


class ShipperHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        SHIPPED.append(self.format(record))


def configure(json_lines: bool = True, level: str = "INFO") -> logging.Logger:
    logger = logging.getLogger("cachekit")
    handler = ShipperHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger
