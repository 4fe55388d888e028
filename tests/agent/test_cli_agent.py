"""``fleetnas agent serve`` refuses to expose itself by accident."""

from __future__ import annotations

import pytest

from fleetnas.cli.agent import is_loopback
from fleetnas.cli.main import main


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("example.org")


def test_non_loopback_host_needs_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "serve", "--host", "0.0.0.0", "--token", "t0k", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to bind '0.0.0.0'" in err and "--allow-remote" in err


def test_bad_setting_is_refused_before_serving(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "serve", "--token", "t0k", "--precision", "fp8", "--port", "0"]) == 2
    assert "precision 'fp8'" in capsys.readouterr().err


def test_zero_timeout_is_a_validation_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Case 5 of issue 18: a traceback and exit code 1 before."""
    assert main(["agent", "serve", "--token", "t0k", "--timeout-s", "0", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--timeout-s" in err and "\n" not in err


def test_taken_port_is_one_line_exit_2_and_no_banner(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert main(["agent", "serve", "--token", "t0k", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already taken" in err
    assert "fleetnas agent:" not in err and "Traceback" not in err


def test_the_suite_runs_while_the_default_port_is_taken(
    agent_port_taken: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 19: `make test` passes while another agent holds 8765. The suite holds it itself
    (tests/conftest.py), so every test runs as it would then: the default port is refused."""
    import socket

    with pytest.raises(OSError), socket.socket() as probe:
        probe.bind(("127.0.0.1", 8765))
    assert main(["agent", "serve", "--token", "t0k"]) == 2
    assert "port 8765 on 127.0.0.1 is already taken" in capsys.readouterr().err


def test_bind_gives_a_listening_socket_on_a_free_port() -> None:
    import socket

    from fleetnas.cli.agent import bind

    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        sock.close()
