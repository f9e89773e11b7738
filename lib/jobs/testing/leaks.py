"""Job code that holds and spills secrets of every look (the redaction
tests, `tests/scripts/test_secrets.py`).

``leak(secret)`` keeps `secret` in locals named ``pwd``,
``private_key``, ``bearer``, ``session`` and ``cookie``, logs it in a
bearer and a basic ``Authorization`` header, a URI's password and a PEM
private-key block, then raises with a bearer header in its message. (The
job's ``getOopsVars`` adds it as ``auth``.)
"""

__all__ = ["leak", "pem_block"]

import base64
import logging

logger = logging.getLogger(__name__)


def pem_block(secret):
    """A PEM private key whose body holds `secret`."""
    return ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow%s\n"
            "-----END RSA PRIVATE KEY-----" % secret)


def leak(secret):
    """See the module's docstring."""
    pwd = private_key = bearer = session = cookie = secret  # noqa: F841
    logger.info("GET /v1/items with Authorization: Bearer %s", secret)
    logger.info("GET /v1/items with Authorization: Basic %s",
                base64.b64encode(("api:%s" % secret).encode()).decode())
    logger.info("Connecting to amqp://jobs:%s@queue/jobs", secret)
    logger.info("Loaded the signing key %s", pem_block(secret))
    raise ValueError("The API refused Authorization: Bearer %s" % secret)
