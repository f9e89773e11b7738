"""Where configuration files are: instance names and paths, and the
chain of files one extends (`jobs.config` loads them).

An instance is a folder holding ``jobs-lazr.conf``, looked up under
``JOBS_CONFIGS_DIR``, the checkout's ``configs/`` (when jobs runs from
its source tree) and the package's ``configs/``. ``[meta] extends:`` is a
path (relative to the file's folder, or absolute) or an instance name.
"""

from __future__ import annotations

__all__ = [
    "PACKAGED_CONFIGS",
    "instance_folders",
    "read_chain",
    "resolve_instance",
    "without_meta",
]

import configparser
import io
import os
from typing import Optional

from jobs.errors import ConfigError

PACKAGED_CONFIGS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "configs")
INSTANCE_FILE = "jobs-lazr.conf"


def _checkout_configs() -> Optional[str]:
    """The checkout's ``configs/`` folder, when jobs runs from its source
    tree (``lib/jobs`` beside ``setup.py``); None when installed."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    folder = os.path.join(root, "configs")
    if os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(
            folder):
        return folder
    return None


def instance_folders() -> list[str]:
    """The folders instance names are looked up in, in order."""
    folders = []
    if os.environ.get("JOBS_CONFIGS_DIR"):
        folders.append(os.environ["JOBS_CONFIGS_DIR"])
    checkout = _checkout_configs()
    if checkout is not None:
        folders.append(checkout)
    folders.append(PACKAGED_CONFIGS)
    return folders


def is_path(name_or_path: str) -> bool:
    """True when `name_or_path` names a file rather than an instance."""
    return name_or_path.endswith(".conf") or "/" in name_or_path or (
        os.sep in name_or_path)


def resolve_instance(name_or_path: str,
                     relative_to: Optional[str] = None) -> str:
    """Return the config file of an instance name or a file path.

    :param relative_to: the folder a relative path is relative to
        (default: the current directory).
    :raises ConfigError: for an instance name found nowhere.
    """
    if is_path(name_or_path):
        return os.path.normpath(os.path.join(
            relative_to or os.getcwd(), os.path.expanduser(name_or_path)))
    folders = instance_folders()
    for folder in folders:
        path = os.path.join(folder, name_or_path, INSTANCE_FILE)
        if os.path.isfile(path):
            return path
    known = sorted({name for folder in folders if os.path.isdir(folder)
                    for name in os.listdir(folder)
                    if os.path.isfile(os.path.join(folder, name,
                                                   INSTANCE_FILE))})
    raise ConfigError(
        "No config instance %r (instances: %s): give the path of a .conf"
        " file instead." % (name_or_path, ", ".join(known)))


def read_chain(path: str) -> list[tuple[str, configparser.RawConfigParser]]:
    """Return [(path, RawConfigParser)] following ``[meta] extends``,
    the named file first."""
    chain: list[tuple[str, configparser.RawConfigParser]] = []
    seen = set()
    current: Optional[str] = path
    while current is not None:
        if current in seen:
            raise ConfigError(
                "%s: [meta] extends loops back to itself." % current)
        seen.add(current)
        parser = configparser.RawConfigParser(strict=False)
        try:
            with open(current, encoding="utf-8") as f:
                parser.read_file(f, current)
        except FileNotFoundError:
            raise ConfigError("Config file not found: %s" % current) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("Cannot read config file %s: %s" % (
                current, e)) from None
        except configparser.Error as e:
            raise ConfigError("Malformed config file %s: %s" % (
                current, " ".join(str(e).split()))) from None
        chain.append((current, parser))
        extends = parser.get("meta", "extends", fallback=None)
        if not extends:
            break
        try:
            current = resolve_instance(
                extends.strip(), relative_to=os.path.dirname(current))
        except ConfigError as e:
            raise ConfigError("%s: [meta] extends: %s" % (current, e)) from None
    return chain


def without_meta(parser: configparser.RawConfigParser) -> str:
    """`parser`'s sections as config text, without ``[meta]``: the chain
    is followed here, not by lazr.config (which cannot follow an
    absolute path or an instance name)."""
    copy = configparser.RawConfigParser(strict=False)
    for section in parser.sections():
        if section == "meta":
            continue
        copy.add_section(section)
        for key, value in parser.items(section):
            copy.set(section, key, value)
    text = io.StringIO()
    copy.write(text)
    return text.getvalue()
