"""A worker's own ``/metrics`` (``run_jobs.py --worker --metrics-port``):
its tallies, served by ``prometheus_client`` in a daemon thread."""

__all__ = ["serve_metrics"]

from jobs.errors import ConfigError


def serve_metrics(port, address="127.0.0.1"):
    """Serve this process's metrics on `address`:`port` until it exits.

    :raises ConfigError: ``prometheus_client`` is not installed (the
        ``web`` extra), or the port cannot be bound.
    """
    try:
        from prometheus_client import start_http_server

        from jobs.metrics.collector import registry
    except ImportError as e:
        raise ConfigError("--metrics-port needs prometheus_client (pip"
                          " install 'jobs[web]'): %s" % e) from None
    try:
        return start_http_server(port, address, registry=registry())
    except OSError as e:
        raise ConfigError("Cannot serve metrics on %s:%d: %s" % (
            address, port, e.strerror or e)) from None
