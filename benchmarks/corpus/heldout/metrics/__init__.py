"""Counters, histograms, exporters and billing for the platform's usage metrics."""

from .core import Counter, Exporter, Histogram, RingBuffer, format_value, sort_series, top

__all__ = ["Counter", "Exporter", "Histogram", "RingBuffer", "format_value", "sort_series",
           "top"]
