"""The optional configuration file: ``/etc/ossec-ar.conf`` if it exists,
else ``<prefix>/etc/ossec-ar.conf``.

No file means the defaults.  A file that is broken in any way stops the run
with exit 78 and names the file, the line and the problem, before anything is
changed: a typo must never silently turn into different behaviour.

The file decides what we block and with which tools, so it is trusted only
when root alone can have written it: a regular file owned by root, writable
by nobody else, in directories that only root can change (see ``safefile``).
Wazuh gives its ``etc/`` to the wazuh user, so on Wazuh agents the file
belongs in ``/etc/ossec-ar.conf``, which is looked at first.

A small parser of our own rather than configparser: it reports line numbers
for every problem, and the import cost is only paid when the file exists.
"""

import os

from . import safefile
from .exits import CONFIG, RESOURCE_ERRORS, TEMPFAIL, Stop, failed

FILE_NAME = "ossec-ar.conf"
SYSTEM_FILE = os.path.join("/etc", FILE_NAME)
MAX_SIZE = 1 << 20


class Settings:
    """Effective settings; the class attributes are the defaults.

    The backends' own keys (``chain``, ``nft_table``...) are declared by
    each backend (its ``settings``) and kept in :attr:`options`.
    """

    backend = "auto"
    lock_wait = 60.0
    host_deny_lock_wait = 60.0
    ipv6_prefix = 128       # firewall-drop's: the length of IPv6 prefix an add blocks
    host_deny_ipv6_prefix = 128
    allowlist = ()          # (text as written, ip_network) pairs
    protect = ("self", "gateways", "resolvers", "manager")     # protect.NAMES
    system_name = None      # None: what uname(2) says
    tool_dirs = ()          # (): commands.DEFAULT_TOOL_DIRS

    def __init__(self, options=None, **values):
        self.options = dict(options or {})
        for key, value in values.items():
            setattr(self, key, value)

    def option(self, key, default):
        """A backend's setting, or its *default* when the file does not set it."""
        return self.options.get(key, default)

    def __getattr__(self, key):
        """A backend's setting by its key (``settings.chain``), as the file
        set it or as the backend declares its default; for people and
        tests: the backends use :meth:`option`."""
        if key.startswith("_") or key == "options":
            raise AttributeError(key)
        if key in self.options:
            return self.options[key]
        from . import backends
        for name in backends.REGISTRY:
            declared = backends.module(name).Backend.settings
            if key in declared:
                return declared[key][0]
        raise AttributeError(key)


def config_path(prefix):
    """The file that configures the install at *prefix*: /etc/ossec-ar.conf
    when it exists, else the one in the prefix's etc/."""
    if os.path.lexists(SYSTEM_FILE):
        return SYSTEM_FILE
    return os.path.join(prefix, "etc", FILE_NAME)


def load_for_lifting(prefix):
    """``(settings, problem)`` for a run that only lifts blocks.

    Lifting must always be possible: a broken or untrusted file stops
    every add (78), but a delete goes on with the defaults, which find a
    block where the ledger says it was made, and *problem* says which
    file was set aside, for the outcome line.  None when the file is fine.
    """
    try:
        return load(config_path(prefix)), None
    except Stop as stop:
        if stop.code != CONFIG:
            raise
        return Settings(), stop.reason


def set_aside(problem):
    """The outcome line's words for a configuration a delete did not use."""
    return "default settings used: %s" % problem


def load(path):
    """Return :class:`Settings` from *path*, or the defaults if it is absent.

    *path* must be trusted up to the directory above its own
    (``<prefix>/etc/ossec-ar.conf`` up to the prefix, ``/etc/ossec-ar.conf``
    up to ``/``).
    """
    try:
        data, info = safefile.read_file(path, MAX_SIZE + 1)
    except OSError as error:
        if error.errno in RESOURCE_ERRORS:
            raise failed(TEMPFAIL, "configuration %s: cannot read: %s"
                         % (path, error.strerror))
        raise _problem(path, None, "cannot read: %s" % error.strerror)
    if data is None:
        return Settings()
    reason = safefile.untrusted(path, info, os.path.dirname(os.path.dirname(path)))
    if reason:
        raise _problem(path, None, "not trusted: %s; only a file that root alone can"
                       " change is used (see README, Configuration)" % reason)
    if len(data) > MAX_SIZE:
        raise _problem(path, None, "larger than %d bytes" % MAX_SIZE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _problem(path, None, "not UTF-8 text")
    values, options = {}, {}
    seen = {}
    for lineno, section, key, value in _entries(path, text):
        attribute, parse = _KEYS[section].get(key, (None, None))
        place = values
        if parse is None and section == "firewall-drop":
            attribute, parse = key, backend_keys().get(key)
            place = options
        if parse is None:
            raise _problem(path, lineno, "unknown key %r in section [%s]"
                           % (key, section))
        if (section, key) in seen:
            raise _problem(path, lineno, "%r set again in [%s] (first on line %d)"
                           % (key, section, seen[section, key]))
        seen[section, key] = lineno
        try:
            place[attribute] = parse(value)
        except ValueError as error:
            raise _problem(path, lineno, "%s: %s" % (key, error))
    return Settings(options, **values)


def backend_keys():
    """{key: parser} of every backend's own [firewall-drop] settings.

    Only needed when a file sets one, so the backends' modules are loaded
    here and not on every run.
    """
    from . import backends
    keys = {}
    for name in backends.REGISTRY:
        for key, (_, parse) in backends.module(name).Backend.settings.items():
            keys[key] = parse
    return keys


def _entries(path, text):
    """Yield (line number, section, key, value); continuation lines join."""
    section = None
    pending = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0] in " \t" and pending is not None:
            pending[3] += " " + stripped
            continue
        if pending is not None:
            yield tuple(pending)
            pending = None
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise _problem(path, lineno, "bad section header")
            section = stripped[1:-1].strip()
            if section not in _KEYS:
                raise _problem(path, lineno, "unknown section [%s]" % section)
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            raise _problem(path, lineno, "expected 'key = value'")
        if section is None:
            raise _problem(path, lineno, "key outside any [section]")
        pending = [lineno, section, key.strip(), value.strip()]
    if pending is not None:
        yield tuple(pending)


def _problem(path, lineno, message):
    where = path if lineno is None else "%s line %d" % (path, lineno)
    return failed(CONFIG, "configuration %s: %s" % (where, message))


def _backend(value):
    from .backends import REGISTRY
    known = ("auto",) + tuple(REGISTRY)
    if value not in known:
        raise ValueError("unknown backend %r (known: %s)" % (value, ", ".join(known)))
    return value


_BUILTIN_CHAINS = frozenset(("INPUT", "FORWARD", "OUTPUT", "PREROUTING",
                             "POSTROUTING"))
_CHAIN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_-")


# Value parsers: these three are for the backends' own settings.

def chain_name(value):
    if (not 0 < len(value) <= 28 or not value[0].isalpha()
            or not set(value) <= _CHAIN_CHARS or value in _BUILTIN_CHAINS):
        raise ValueError("%r is not a usable chain name (1-28 letters, digits,"
                         " '_' or '-', starting with a letter, not a built-in"
                         " chain)" % value)
    return value


_NAME_CHARS = _CHAIN_CHARS


def table_name(value):
    if (not 0 < len(value) <= 31 or not value[0].isalpha()
            or not set(value) <= _NAME_CHARS):
        raise ValueError("%r is not a usable name (1-31 letters, digits, '_' or '-',"
                         " starting with a letter)" % value)
    return value


def rule_number(value):
    if not _is_number(value) or not 1 <= int(value) <= 65534:
        raise ValueError("%r is not an ipfw rule number from 1 to 65534" % value)
    return int(value)


_ASCII_DIGITS = frozenset("0123456789")


def _is_number(text):
    """ASCII digits only: int() and float() also take other scripts' digits."""
    return bool(text) and set(text) <= _ASCII_DIGITS


def _seconds(value):
    whole, _, fraction = value.partition(".")
    seconds = float(value) if _is_number(whole) and (not fraction or
                                                    _is_number(fraction)) else -1.0
    if not 0 < seconds <= 3600:
        raise ValueError("%r is not a number of seconds from 0 to 3600" % value)
    return seconds


def _prefix_length(value):
    """``ipv6_prefix``: 48 to 128 (address.WIDEST_PREFIX)."""
    from .address import WIDEST_PREFIX
    if not _is_number(value) or not WIDEST_PREFIX <= int(value) <= 128:
        raise ValueError("%r is not an IPv6 prefix length from %d to 128 (128: the"
                         " address alone)" % (value, WIDEST_PREFIX))
    return int(value)


def _system(value):
    if not value.isalnum():
        raise ValueError("%r is not a system name as uname -s prints it" % value)
    return value


def _directories(value):
    """Absolute, root-owned directories that nobody else can write to:
    whatever is found there runs as root."""
    directories = []
    for item in value.replace(":", " ").split():
        if not os.path.isabs(item):
            raise ValueError("%r is not an absolute path" % item)
        try:
            info = os.stat(item)
        except OSError as error:
            raise ValueError("%s: %s" % (item, error.strerror))
        if not os.path.isdir(item):
            raise ValueError("%s is not a directory" % item)
        if info.st_uid != 0 or info.st_mode & 0o022:
            raise ValueError("%s must be owned by root and writable by nobody"
                             " else" % item)
        directories.append(item)
    if not directories:
        raise ValueError("no directory given")
    return tuple(directories)


def _networks(value):
    import ipaddress
    networks = []
    for item in value.replace(",", " ").split():
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError("%r is not an IP address or network" % item)
        networks.append((item, _unmapped(network)))
    return tuple(networks)


def _protections(value):
    """``protect``: any of the protections' names, or ``none``."""
    from .protect import NAMES
    words = value.replace(",", " ").split()
    if words == ["none"]:
        return ()
    for word in words:
        if word not in NAMES:
            raise ValueError("unknown protection %r (known: %s; or none alone)"
                             % (word, ", ".join(NAMES)))
    if not words:
        raise ValueError("no protection given (to turn them all off: none)")
    return tuple(name for name in NAMES if name in words)


def _unmapped(network):
    """An IPv4-mapped network (``::ffff:192.0.2.10``, ``::ffff:10.0.0.0/104``)
    as the IPv4 one it means: the programs read a mapped address as IPv4,
    so only then can the entry match it."""
    import ipaddress
    mapped = network.version == 6 and network.prefixlen >= 96 and \
        network.network_address.ipv4_mapped is not None
    if not mapped:
        return network
    return ipaddress.ip_network("%s/%d" % (network.network_address.ipv4_mapped,
                                           network.prefixlen - 96))


# section -> key -> (Settings attribute, parser of the value); the backends'
# own keys in [firewall-drop] come from their declarations (backend_keys).
_KEYS = {
    "firewall-drop": {"backend": ("backend", _backend),
                      "lock_wait": ("lock_wait", _seconds),
                      "ipv6_prefix": ("ipv6_prefix", _prefix_length)},
    "host-deny": {"lock_wait": ("host_deny_lock_wait", _seconds),
                  "ipv6_prefix": ("host_deny_ipv6_prefix", _prefix_length)},
    "allowlist": {"addresses": ("allowlist", _networks),
                  "protect": ("protect", _protections)},
    "system": {"name": ("system_name", _system),
               "tool_dirs": ("tool_dirs", _directories)},
}
