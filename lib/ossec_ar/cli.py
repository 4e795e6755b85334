"""One run of an active-response program, from argv to exit code.

The shape of every run: write the invocation line, do the work, write one
outcome line, return the exit code.  Nothing is printed: execd discards
stdout and stderr, so the log is where the administrator looks.
"""

import os

from . import exits, log, request


def main(program, argv, prefix, respond):
    """Run *respond* for the request in *argv* and return the exit code.

    *program* is the installed name without ``.sh`` (for syslog), *prefix*
    the install prefix found from the executable's real location, and
    *respond* ``respond(prefix, request) -> (status, address, detail)``.
    """
    # As invoked, not resolved through symlinks: the ruleset and the log
    # path both follow the name execd used.
    argv0 = os.path.abspath(argv[0]) if argv and argv[0] else program
    writer = log.Log(log.log_path(argv0), program)
    # execd runs us in /; make sure of it, so that no tool we start ever
    # works in a caller's directory.
    os.chdir("/")
    try:
        writer.write(invocation_line(argv0, argv[1:]))
        action, address = _what(argv[1:])
        try:
            req = request.from_argv(argv[1:])
            status, normalised, detail = respond(prefix, req)
            address, code = log.escape(normalised), exits.OK
        except exits.Failure as failure:
            status, detail, code = failure.status, failure.reason, failure.code
        except Exception as error:     # a bug: say where, exit 70
            status, detail, code = "failed", _summary(error), exits.INTERNAL
        writer.write(outcome_line(argv0, action, address, status, detail, code))
    finally:
        writer.close()
    return code


def invocation_line(argv0, args):
    """``<argv0> <$1> <$2> <$3> <$4> <$5>`` as the stock scripts write it."""
    fields = [log.escape(arg) for arg in args[:5]]
    fields += [""] * (5 - len(fields))
    return " ".join([log.escape(argv0)] + fields)


def outcome_line(argv0, action, address, status, detail, code):
    """``<argv0>: <action> <address>: <status>[: <detail>] (exit <code>)``.

    The colon after argv0 is what keeps OSSEC's ar_log decoder from reading
    this as another invocation.
    """
    text = "%s: %s %s: %s" % (log.escape(argv0), action, address, status)
    if detail:
        text += ": " + log.printable(detail)
    return "%s (exit %d)" % (text, code)


def _what(args):
    """Action and address words for the outcome line, before validation."""
    action = args[0] if args and args[0] in request.ACTIONS else "-"
    address = log.escape(args[2]) if len(args) > 2 and args[2] else "-"
    return action, address


def _summary(error):
    import traceback
    frames = traceback.extract_tb(error.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = " at %s:%d in %s" % (os.path.basename(last.filename),
                                     last.lineno, last.name)
    return "internal error: %s: %s%s" % (type(error).__name__, error, where)
