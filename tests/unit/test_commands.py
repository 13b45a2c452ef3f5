"""The external command runner, with real commands."""

from __future__ import annotations

import time

import pytest

from pvc import commands
from pvc.commands import CommandError
from pvc.errors import PVCError


def test_a_command_that_succeeds_gives_its_output() -> None:
    result = commands.run(["sh", "-c", "echo out; echo err >&2"], timeout=10)
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")
    assert result.argv == ("sh", "-c", "echo out; echo err >&2")
    assert commands.run(["true"], timeout=10).returncode == 0


def test_a_failure_names_the_command_and_ends_with_its_stderr() -> None:
    with pytest.raises(CommandError) as caught:
        commands.run(["sh", "-c", "echo x >&2; exit 3"], timeout=10)
    error = caught.value
    assert isinstance(error, PVCError)
    assert str(error) == "sh failed: x"
    assert (error.argv, error.returncode, error.stderr, error.timed_out) == (
        ("sh", "-c", "echo x >&2; exit 3"),
        3,
        "x\n",
        False,
    )


def test_false_fails_with_status_one() -> None:
    with pytest.raises(CommandError, match=r"^false failed: $") as caught:
        commands.run(["false"], timeout=10)
    assert caught.value.returncode == 1 and not caught.value.timed_out


def test_the_name_is_the_words_before_the_first_option() -> None:
    assert commands.command_name(["lvcreate", "--yes", "-L", "1b", "vg"]) == "lvcreate"
    assert (
        commands.command_name(["ceph-volume", "lvm", "create", "--data", "/dev/x"])
        == "ceph-volume lvm create"
    )
    assert commands.command_name(["vgcreate", "osd-db", "/dev/x", "more"]) == "vgcreate osd-db /dev/x"


def test_only_the_end_of_a_long_stderr_is_kept() -> None:
    with pytest.raises(CommandError) as caught:
        commands.run(["sh", "-c", "printf 'a%.0s' $(seq 600) >&2; printf END >&2; exit 1"], timeout=10)
    message = str(caught.value)
    assert message.startswith("sh failed: a") and message.endswith("END")
    assert len(message) == len("sh failed: ") + commands.STDERR_TAIL
    assert len(caught.value.stderr) == 603


def test_accepted_exit_statuses() -> None:
    assert commands.run(["sh", "-c", "exit 3"], timeout=10, accept=(0, 3)).returncode == 3
    assert commands.run(["false"], timeout=10, accept=None).returncode == 1
    with pytest.raises(CommandError):
        commands.run(["true"], timeout=10, accept=(1,))


def test_a_timeout_kills_the_command_and_says_so() -> None:
    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        commands.run(["sleep", "30"], timeout=0.3)
    assert time.monotonic() - started < 10
    error = caught.value
    assert error.timed_out and error.returncode is None and error.timeout == 0.3
    with pytest.raises(CommandError, match=r"^sleep 30 did not finish within 1 s$"):
        commands.run(["sleep", "30"], timeout=1)


def test_a_missing_binary_is_an_error_naming_it() -> None:
    with pytest.raises(CommandError) as caught:
        commands.run(["pvc-no-such-tool", "--help"], timeout=10)
    error = caught.value
    assert str(error).startswith("cannot run pvc-no-such-tool: ")
    assert "No such file or directory" in str(error)
    assert isinstance(error.reason, OSError) and error.returncode is None and not error.timed_out


def test_input_cwd_and_env(tmp_path) -> None:
    assert commands.run(["cat"], timeout=10, input="fed\n").stdout == "fed\n"
    assert commands.run(["cat"], timeout=10).stdout == ""  # stdin is empty, not inherited
    assert commands.run(["pwd"], timeout=10, cwd=tmp_path).stdout.strip() == str(tmp_path)
    result = commands.run(["sh", "-c", 'echo "$PVC_TEST"'], timeout=10, env={"PVC_TEST": "here"})
    assert result.stdout == "here\n"


def test_bytes_mode() -> None:
    result = commands.run(["cat"], timeout=10, input=b"\x00\xff", text=False)
    assert result.stdout == b"\x00\xff"
    with pytest.raises(CommandError) as caught:
        commands.run(["sh", "-c", "printf 'bad \\377' >&2; exit 2"], timeout=10, text=False)
    assert caught.value.stderr == "bad \ufffd" and str(caught.value) == "sh failed: bad \ufffd"


def test_output_tail_prefers_stderr() -> None:
    assert commands.output_tail("a\nb\nc\n", "out", 2) == "b | c"
    assert commands.output_tail("  \n", "x\ny\n", 5) == "x | y"
    with pytest.raises(CommandError) as caught:
        commands.run(["sh", "-c", "echo one; echo two; exit 1"], timeout=10)
    assert caught.value.tail(1) == "two"


@pytest.mark.parametrize("argv", ["true", [], b"true"])
def test_a_command_is_a_list_of_words(argv) -> None:
    with pytest.raises(ValueError, match="non-empty list of words"):
        commands.run(argv, timeout=10)
