"""What the table backends of the BSDs, Solaris and AIX share: their tools,
found once, run with a timeout, and a failure turned into exit 75."""

import ipaddress

from .. import commands
from ..exits import TEMPFAIL, failed

# These tools answer at once; a minute means the kernel is stuck.
TIMEOUT = 60


class Toolbox:
    """The named tools of one backend, found in the tool directories."""

    def __init__(self, *names):
        self.paths = {name: commands.find_tool(name) for name in names}

    def missing(self):
        """The reason the backend cannot run here, or None."""
        for name, path in self.paths.items():
            if path is None:
                return commands.not_found(name)
        return None

    def run(self, name, *args, **options):
        """A :class:`~ossec_ar.commands.Result`; ``input=`` feeds stdin."""
        return commands.run([self.paths[name]] + list(args), TIMEOUT, **options)

    def check(self, name, *args, **options):
        """Like :meth:`run`, but a failure stops the run with exit 75."""
        result = self.run(name, *args, **options)
        if not result.ok:
            raise failed(TEMPFAIL, result.describe())
        return result


def addresses(texts, version):
    """The single addresses of *version* among *texts*, written bare or with
    a full-length prefix as the tools list them.  Networks (we never add
    one) and anything else are skipped."""
    found = set()
    for text in texts:
        try:
            host = ipaddress.ip_interface(text)
        except ValueError:
            continue
        if host.version == version and host.network.prefixlen == host.max_prefixlen:
            found.add(host.ip)
    return found
