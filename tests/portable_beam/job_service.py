"""Beam's Python job service (local_job_service_main) reachable from other hosts.

LocalJobServicer binds 'localhost' and hands clients 'localhost:<port>' as the artifact
staging endpoint, so a client on another host can neither submit nor stage. Its own
docstring (get_bind_address, apache_beam 2.60) says how to open it: bind '[::]' and serve
a name the other hosts resolve. Nothing else changes: the job runs in Beam's FnApiRunner,
which asks the EXTERNAL environment's worker pool for an SDK worker and gives it this
host's name (socket.getfqdn) for the control, data, state and logging planes."""
from __future__ import annotations

import argparse
import logging
import socket
import threading

from apache_beam.runners.portability import local_job_service


class ReachableJobServicer(local_job_service.LocalJobServicer):
    def __init__(self, host: str, staging_dir: str | None):
        super().__init__(staging_dir)
        self._host = host

    def get_bind_address(self) -> str:
        return "[::]"

    def get_service_address(self) -> str:
        return self._host


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=socket.getfqdn(), help="the name other hosts reach this one by")
    parser.add_argument("--staging_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    servicer = ReachableJobServicer(args.host, args.staging_dir)
    port = servicer.start_grpc_server(args.port)
    logging.info("Listening for beam jobs on %s:%d", args.host, port)
    try:
        threading.Event().wait()
    finally:
        servicer.stop()


if __name__ == "__main__":
    main()
