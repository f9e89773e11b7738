"""A worker's own ``/metrics`` (``run_jobs.py --worker --metrics-port``):
its tallies, served by ``prometheus_client`` in a daemon thread."""

__all__ = ["add_metrics_options", "serve_metrics", "serve_metrics_of"]

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


def add_metrics_options(parser):
    """``--metrics-port`` and ``--metrics-address`` of run_jobs.py."""
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT",
        help="Worker mode: serve this worker's Prometheus metrics on"
             " PORT (/metrics; --metrics-address, default 127.0.0.1).")
    parser.add_argument(
        "--metrics-address", default="127.0.0.1", metavar="ADDRESS",
        help="Where --metrics-port listens.")


def serve_metrics_of(options, logger):
    """Serve the metrics the options ask for (none without
    ``--metrics-port``); False, logged, when that cannot be done."""
    if not options.metrics_port:
        return True
    try:
        serve_metrics(options.metrics_port, options.metrics_address)
    except ConfigError as e:
        logger.error("%s", e)
        return False
    logger.info("Serving metrics on http://%s:%d/metrics.",
                options.metrics_address, options.metrics_port)
    return True
