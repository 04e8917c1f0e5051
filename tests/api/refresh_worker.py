"""A separate process for the concurrent-refresh test: waits for a go signal, then calls /me.

Run as ``python -m tests.api.refresh_worker KEYRING GO_FILE``; the connection comes from
``PROCOREFS_*`` variables. Prints one JSON line: who it is and how many refreshes it did.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import keyring

from procorefs.api import ProcoreClient
from procorefs.api.auth import UserCredentials
from procorefs.config import add_connection_arguments, settings_from_args
from tests.api.keyrings import FileKeyring


def main() -> int:
    keyring_path, go_file = sys.argv[1], Path(sys.argv[2])
    keyring.set_keyring(FileKeyring(keyring_path))
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    settings = settings_from_args(parser.parse_args([]))
    with ProcoreClient.from_settings(settings) as client:
        deadline = time.monotonic() + 60
        while not go_file.exists():  # both processes start their requests together
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.005)
        me = client.me()
        creds = client.credentials
        refreshes = creds.refreshes if isinstance(creds, UserCredentials) else -1
    print(json.dumps({"login": me.login, "refreshes": refreshes}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
