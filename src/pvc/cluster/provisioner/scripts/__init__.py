"""Install scripts shipped with PVC, as examples to upload (``pvc provisioner script add``).

They are not imported by PVC: each runs in the install-script sandbox, which gives it
``log`` and ``fail`` (see ``docs/provisioner.md``). :func:`shipped` reads one by name.
"""

from __future__ import annotations

from importlib import resources

#: The scripts shipped, by name.
NAMES = ("noop", "clone", "debootstrap", "ova")


def shipped(name: str) -> str:
    """The text of shipped script ``name``."""
    if name not in NAMES:
        raise KeyError(name)
    return resources.files(__name__).joinpath(f"{name}.py").read_text()
