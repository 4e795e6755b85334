"""ossec-ar: active responses for OSSEC and Wazuh agents.

The executables in active-response/bin are thin wrappers around
:func:`ossec_ar.cli.main`.  Everything on the hot path of one run is kept to
the standard library modules that the interpreter has already loaded, plus
``ipaddress``, so that a run costs little more than the firewall command.
"""

__version__ = "0.2.0"
