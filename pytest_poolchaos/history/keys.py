"""One name per test whether it came from a pytest run or from a JUnit XML file.

A JUnit file knows a test only as ``classname`` + ``name``, which pytest derives from the node
id (``tests/test_a.py::TestX::test_y[1]`` -> ``tests.test_a.TestX`` + ``test_y[1]``). The store
keys every test by that pair, so history imported from JUnit files and history recorded by
the plugin meet on the same rows.
"""

from __future__ import annotations

__all__ = ["key_of", "key_of_junit", "nodeid_of_junit"]


def key_of(nodeid: str) -> str:
    """The key of a pytest node id, mangled exactly as ``_pytest.junitxml`` does."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    module = names[0].replace("/", ".")
    names[0] = module[:-3] if module.endswith(".py") else module
    names[-1] += bracket + params
    return key_of_junit(".".join(names[:-1]), names[-1])


def key_of_junit(classname: str, name: str) -> str:
    return f"{classname}::{name}" if classname else name


def nodeid_of_junit(classname: str, name: str, file: str | None = None) -> str:
    """A best guess at the node id behind a JUnit test case, for display only.

    With xunit1's ``file`` attribute the module is known; otherwise the first dotted part
    that starts with a capital letter (``TestX``) is taken as the first class.
    """
    parts = classname.split(".") if classname else []
    if file and file.endswith(".py"):
        module = file[:-3].replace("/", ".").replace("\\", ".")
        if classname == module or classname.startswith(module + "."):
            classes = classname[len(module) + 1:].split(".") if classname != module else []
            return "::".join([file.replace("\\", "/"), *filter(None, classes), name])
    split = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts))
    module = "/".join(parts[:split])
    return "::".join([f"{module}.py" if module else "?", *parts[split:], name])
