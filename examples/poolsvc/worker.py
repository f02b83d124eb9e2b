"""A worker process: warms up, says it is ready, then answers one JSON request per line.

Run as a script (``python worker.py WARMUP_SECONDS``) so it starts without importing poolsvc.
"""

import json
import os
import sys
import time


def main() -> None:
    warmup = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    time.sleep(warmup)  # stands in for importing a heavy runtime and loading a model
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for raw in sys.stdin:
        request = json.loads(raw)
        op = request.pop("op")
        if op == "stop":
            print(json.dumps({"ok": True, "pid": os.getpid()}), flush=True)
            return
        if op == "sleep":
            time.sleep(request["seconds"])
        print(json.dumps({"ok": True, "pid": os.getpid(), "value": request.get("value")}),
              flush=True)


if __name__ == "__main__":
    main()
