"""Help examples that name images with their real tags, read from ``commands/*.json``.

A help text that pastes ``xnatpic-mri2dicom:0.1.1`` goes stale at the next version;
:func:`with_images` fills ``{image:mri2dicom}`` from the clone's ``commands/mri2dicom.json``
(``xnatpic-mri2dicom:<version>`` when the commands are not beside the package).
"""

from __future__ import annotations

import json
import re
from functools import cache

from xnatpic.xnat.local_entrypoint import repository_root

__all__ = ["image_of", "with_images"]

_PLACEHOLDER = re.compile(r"\{image:([\w-]+)\}")


@cache
def image_of(step: str) -> str:
    """The ``image`` of ``commands/<step>.json`` in this clone, else a generic name."""
    root = repository_root()
    path = root / "commands" / f"{step}.json" if root is not None else None
    if path is not None and path.is_file():
        try:
            image = json.loads(path.read_text(encoding="utf-8")).get("image")
        except (OSError, ValueError, AttributeError):
            image = None
        if isinstance(image, str) and image:
            return image
    return f"xnatpic-{step}:<version>"


def with_images(text: str) -> str:
    """Replace every ``{image:STEP}`` in ``text`` with :func:`image_of` ``(STEP)``.

    Examples
    --------
    >>> with_images("xnatpic xnat register {image:nope}")
    'xnatpic xnat register xnatpic-nope:<version>'
    """
    return _PLACEHOLDER.sub(lambda m: image_of(m.group(1)), text)
