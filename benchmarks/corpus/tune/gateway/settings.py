"""Gateway defaults, read when a client connects."""

#: the host clients connect to when they are given only a port
HOST = "127.0.0.1"
