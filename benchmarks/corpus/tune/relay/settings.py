"""Relay tunables, read at call time so a deployment can change them at start-up."""

BATCH_SIZE = 50
RETRIES = 3
