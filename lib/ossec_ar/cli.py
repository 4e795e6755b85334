"""One run of an active-response program, from request to exit code.

The shape of every run: write the invocation line, do the work, write one
outcome line, return the exit code.  Nothing is printed under execd (it
gives us no terminal, and discards what we print), except the one protocol
line Wazuh's execd asks for: the log is where the administrator looks.
When standard error is a terminal, a person ran the program by hand: the
outcome line goes there too, as the log has it without the date, and a
usage error (exit 64) first shows the usage lines.

Arguments mean OSSEC's argv form; no arguments mean Wazuh's JSON form on
stdin, logged in Wazuh's own format.

Whatever happens after the log is open ends in an outcome line and an exit
code from the README's table, never a traceback: running out of
descriptors, memory or processes is a temporary failure (75), anything
else unexpected a bug (70).
"""

import os

from . import exits, log, request


def main(program, argv, prefix, respond):
    """Run *respond* for the request and return the exit code.

    *program* is the installed name without ``.sh`` (for syslog), *prefix*
    the install prefix found from the executable's real location, and
    *respond* ``respond(prefix, request) -> (status, address, detail)``.
    """
    # As invoked, not resolved through symlinks: the ruleset and the log
    # path both follow the name execd used.
    invoked = argv[0] if argv and argv[0] else program
    argv0 = os.path.abspath(invoked)
    wazuh_form = len(argv) < 2
    date = log.wazuh_date if wazuh_form else log.c_date
    writer = log.Log(log.log_path(argv0), program, date)
    # execd runs us in /; make sure of it, so that no tool we start ever
    # works in a caller's directory.
    os.chdir("/")
    try:
        name = os.path.basename(invoked)
        name = name[:-3] if name.endswith(".sh") else name
        # The outcome line of a run that memory runs out on so badly that
        # not even its failure can be put in words: made now, written then
        # with one write(2) and no allocation (dated now, not then).
        shown, words = ((log.escape(invoked), ("-", "-")) if wazuh_form else
                        (log.escape(argv0), _what(argv[1:])))
        writer.prepare(outcome_line(shown, words[0], words[1], "failed", SHORT_OF_MEMORY,
                                    exits.TEMPFAIL))

        def named(prefix, req):
            req.name = name
            return respond(prefix, req)
        if wazuh_form:
            return _run_wazuh(writer, invoked, prefix, named)
        return _run_ossec(writer, argv0, argv[1:], prefix, named)
    except MemoryError:
        if not writer.write_prepared():
            raise                   # the log was never opened: nothing was written
        return exits.TEMPFAIL
    finally:
        writer.close()


SHORT_OF_MEMORY = "the system is short of resources: out of memory"


def standard_descriptors():
    """Put /dev/null on descriptors 0, 1 and 2 if the caller closed them, so
    that the log can never be opened as our stdout (where Wazuh's
    check_keys line goes).  The executables call this first."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)    # the lowest free: fd itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _run_ossec(writer, argv0, args, prefix, respond):
    writer.write(invocation_line(argv0, args))
    words = _what(args) + ("",)
    return _finish(writer, log.escape(argv0), words,
                   lambda: (request.from_argv(args), words), prefix, respond)


def _run_wazuh(writer, invoked, prefix, respond):
    shown = log.escape(invoked)
    try:
        if os.isatty(0):
            # execd always writes the request into a pipe: this is a person
            # who ran the program without arguments.
            raise exits.usage("no arguments, and standard input is a terminal, not a "
                              "request from execd; " + request.USAGE_TEXT)
        from . import wazuh
        channel = wazuh.Channel()
        line = channel.read_line("request")
    except BaseException as error:
        stop = as_stop(error)
        writer.write("%s: (no request read)" % shown)
        outcome = outcome_line(shown, "-", "-", stop.status, stop.reason, stop.code)
        writer.write(outcome)
        tell_terminal(shown, outcome, stop.code)
        return stop.code
    # Wazuh's programs log the request line as received, and the manager's
    # ar_log_json decoder parses it as JSON for its rules on blocked and
    # unblocked hosts: only what could end or split the line is escaped.
    writer.write("%s: %s" % (shown, wazuh.logged(line)))

    def parse():
        req = channel.request(line, os.path.basename(invoked))
        ids = "rule %s, alert %s" % (log.escape(req.rule_id), log.escape(req.alert_id))
        return req, (req.action, log.escape(req.address) or "-", ids)
    return _finish(writer, shown, ("-", "-", ""), parse, prefix, respond)


def _finish(writer, shown, words, parse, prefix, respond):
    """Parse and carry out the request, write the outcome line; the exit code.

    *words* are the action, address and ids for the outcome line until
    ``parse() -> (request, words)`` gives better ones.
    """
    action, address, ids = words
    try:
        req, (action, address, ids) = parse()
        status, normalised, detail = respond(prefix, req)
        address, code = log.escape(normalised), exits.OK
    except BaseException as error:
        stop = as_stop(error)
        status, detail, code = stop.status, stop.reason, stop.code
    if ids:
        detail = "%s (%s)" % (detail, ids) if detail else "(%s)" % ids
    line = outcome_line(shown, action, address, status, detail, code)
    writer.write(line)
    tell_terminal(shown, line, code)
    return code


def tell_terminal(shown, line, code):
    """Write the outcome *line* to standard error if that is a terminal: a
    person ran us by hand and is looking there, not at the log.  A usage
    error shows the usage lines first (*shown*: the program's path,
    escaped as the log has it).  Nothing else ever goes there, and nothing
    at all under execd, cron or a pipe: one isatty(3) call, no import."""
    try:
        if not os.isatty(2):
            return
        text = line + "\n"
        if code == exits.USAGE:
            name = os.path.basename(shown)
            text = ("usage: %s %s\n   or: %s < REQUEST  (one JSON line, as Wazuh's "
                    "execd sends it)\n" % (name, request.FORM, name)) + text
        os.write(2, text.encode("utf-8", "surrogateescape"))
    except OSError:
        pass


def invocation_line(argv0, args):
    """``<argv0> <$1> <$2> <$3> <$4> <$5>`` as the stock scripts write it."""
    fields = [log.escape(arg) for arg in args[:5]]
    fields += [""] * (5 - len(fields))
    return " ".join([log.escape(argv0)] + fields)


def outcome_line(shown, action, address, status, detail, code):
    """``<argv0>: <action> <address>: <status>[: <detail>] (exit <code>)``.

    The colon after argv0 is what keeps OSSEC's ar_log decoder from reading
    this as another invocation.
    """
    text = "%s: %s %s: %s" % (shown, action, address, status)
    if detail:
        text += ": " + log.printable(detail)
    return "%s (exit %d)" % (text, code)


def _what(args):
    """Action and address words for the outcome line, before validation."""
    action = args[0] if args and args[0] in request.ACTIONS else "-"
    address = log.escape(args[2]) if len(args) > 2 and args[2] else "-"
    return action, address


def as_stop(error):
    """What an exception that ended a run means for the log and the exit code.

    KeyboardInterrupt and SystemExit are not caught here: nothing raises
    them in a run, and a signal that kills us needs no outcome line.
    """
    if isinstance(error, exits.Stop):
        return error
    if isinstance(error, (MemoryError, SystemError)) or (
            isinstance(error, OSError) and error.errno in exits.RESOURCE_ERRORS):
        # Short of memory, CPython's own machinery (an import a run makes
        # late, such as the protections') can fail with SystemError instead
        # of MemoryError: the executables' guard already reads it so.
        what = (error.strerror if isinstance(error, OSError) else
                "out of memory" if isinstance(error, MemoryError) else
                "out of memory (the interpreter failed: %s)" % error)
        return exits.failed(exits.TEMPFAIL, "the system is short of resources: %s%s"
                            % (what, _where(error)))
    if not isinstance(error, Exception):
        raise error
    return exits.failed(exits.INTERNAL, internal_error(error))


def internal_error(error):
    return "internal error: %s: %s%s" % (type(error).__name__, error, _where(error))


def _where(error):
    """`` at file:line in function`` of the innermost frame.  Walked by
    hand: importing traceback can itself fail when descriptors run out."""
    frame = error.__traceback__
    if frame is None:
        return ""
    while frame.tb_next is not None:
        frame = frame.tb_next
    code = frame.tb_frame.f_code
    return " at %s:%d in %s" % (os.path.basename(code.co_filename), frame.tb_lineno,
                                code.co_name)
