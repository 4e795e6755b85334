import pytest

from ossec_ar import exits, request


def test_full_argv_from_execd():
    req = request.from_argv(["add", "-", "192.0.2.7", "1326977549.1358625", "5712",
                             "(web1)", "10.0.0.5->/var/log/secure", "-"])
    assert (req.action, req.user, req.address, req.alert_id, req.rule_id) == (
        "add", "-", "192.0.2.7", "1326977549.1358625", "5712")


def test_agent_control_form_is_accepted():
    req = request.from_argv(["delete", "-", "192.0.2.7", "(from_the_server)",
                             "(no_rule_id)"])
    assert (req.action, req.alert_id, req.rule_id) == (
        "delete", "(from_the_server)", "(no_rule_id)")


def test_three_arguments_are_enough():
    req = request.from_argv(["add", "root", "192.0.2.7"])
    assert (req.user, req.alert_id, req.rule_id) == ("root", "-", "-")


def test_thirty_arguments_are_accepted():
    assert request.from_argv(["add", "-", "192.0.2.7"] + ["x"] * 27).action == "add"


@pytest.mark.parametrize("args,reason", [
    ([], "no arguments"),
    (["add"], "no IP address"),
    (["add", "-"], "no IP address"),
    (["ADD", "-", "192.0.2.7"], "unknown action ADD"),
    (["remove", "-", "192.0.2.7"], "unknown action remove"),
    (["add\nx", "-", "192.0.2.7"], "unknown action add\nx"),   # escaped by the log
    (["-j", "ACCEPT", "192.0.2.7"], "unknown action -j"),
    (["add", "-", "192.0.2.7"] + ["x"] * 28, "31 arguments, at most 30"),
])
def test_usage_errors_exit_64(args, reason):
    with pytest.raises(exits.Stop) as info:
        request.from_argv(args)
    assert (info.value.code, info.value.status) == (exits.USAGE, "usage")
    assert exits.USAGE == 64
    assert reason in info.value.reason
