"""``python -m tests.integration.reliability.servers up|down|status [NAME ...]``
(bin/reliability-servers)."""

from __future__ import annotations

import sys
import time

from tests.integration.reliability.servers import HOST, SERVERS
from tests.integration.reliability.servers import __doc__ as USAGE


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "down", "status"):
        print("\n".join(USAGE.strip().splitlines()[-3:]), file=sys.stderr)
        return 2
    command, names = argv[0], argv[1:] or list(SERVERS)
    unknown = [name for name in names if name not in SERVERS]
    if unknown:
        print(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(SERVERS)}")
        return 2
    for name in names:
        server = SERVERS[name]()
        where = f"{HOST}:{server.port}"
        if command == "up":
            started = time.monotonic()
            fresh = server.up()
            state = f"started in {time.monotonic() - started:.1f}s" if fresh else "already up"
            print(f"{name} on {where}: {state}")
        elif command == "down":
            server.down()
            print(f"{name} on {where}: stopped")
        else:
            print(f"{name} on {where}: {'up' if server.accepting() else 'down'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
