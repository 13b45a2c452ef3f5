"""Reports of scheduled runs by e-mail, through the local ``sendmail``.

Recipients are checked strictly (a plain ``user@domain`` each) and given to ``sendmail`` as
arguments after ``--``, never as headers it would parse, so no address can add recipients
or options.
"""

from __future__ import annotations

import logging
import re
import subprocess
from email.message import EmailMessage
from pathlib import Path

log = logging.getLogger(__name__)

ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*")
#: The most recipients one report goes to.
MAX_RECIPIENTS = 32
#: Seconds sendmail may take to accept a report.
SENDMAIL_TIMEOUT = 60.0


def parse_recipients(value: object, error: type[Exception] = ValueError) -> list[str]:
    """The addresses of a comma-separated list (or a list); ``error`` for a bad one."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise error("email_recipients must be a comma-separated list of addresses")
    found = [item.strip() for item in items if item.strip()]
    if len(found) > MAX_RECIPIENTS:
        raise error(f"at most {MAX_RECIPIENTS} email recipients")
    for address in found:
        if not ADDRESS.fullmatch(address):
            raise error(f"{address[:80]!r} is not an email address (user@domain)")
    return found


def send_report(sendmail: Path, sender: str, recipients: list[str], subject: str, body: str) -> str | None:
    """Mail ``body`` to ``recipients``; None once sendmail took it, else why not (logged)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    try:
        done = subprocess.run(
            [str(sendmail), "-i", "-f", sender, "--", *recipients],
            input=message.as_bytes(),
            capture_output=True,
            timeout=SENDMAIL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        problem = f"{sendmail} could not be run: {type(error).__name__}: {error}"
    else:
        if done.returncode == 0:
            return None
        problem = f"{sendmail} failed ({done.returncode}): {done.stderr.decode(errors='replace')[:200]}"
    log.warning("the report %r was not mailed: %s", subject, problem)
    return problem
