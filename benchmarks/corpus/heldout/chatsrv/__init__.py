"""A room-based chat service over Unix domain sockets."""

from .client import ChatClient, ConnectionClosed
from .server import ChatServer, default_path

__all__ = ["ChatClient", "ChatServer", "ConnectionClosed", "default_path"]
