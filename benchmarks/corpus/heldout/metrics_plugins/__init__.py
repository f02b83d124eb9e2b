"""Exporters for the metrics package, one module per backend."""
