"""Text cut to a DICOM value's length limit in encoded bytes, never inside a character.

PS3.5 6.2 gives the maximum length of the text VRs (LO 64, SH 16, PN 64 per component
group...); a multi-byte character set (ISO_IR 192, UTF-8, which the converter declares
for ParaVision text) makes one character up to four bytes, and dciodvfy counts bytes. So
a value is cut by its encoded length — the longest prefix that fits — rather than by
characters, and a character is never split (the bytes always decode).
"""

from __future__ import annotations

from pydicom.charset import encode_string

__all__ = ["fit_bytes", "fits_bytes"]

#: Python encoding of ISO_IR 192, the converter's SpecificCharacterSet.
UTF8 = ["utf_8"]


def _size(text: str, encodings: list[str] | None) -> int:
    if encodings is None or encodings in (UTF8, ["UTF8"], ["utf8"]):
        return len(text.encode("utf-8"))
    return len(encode_string(text, encodings))


def fits_bytes(text: str, limit: int, encodings: list[str] | None = None) -> bool:
    """Whether ``text`` encoded (``encodings``: pydicom's Python encodings of the
    SpecificCharacterSet; None is UTF-8) takes at most ``limit`` bytes."""
    if len(text) > limit:
        # no character set in use encodes a character in less than one byte
        return False
    if encodings is None and 4 * len(text) <= limit:
        return True
    return _size(text, encodings) <= limit


def fit_bytes(text: str, limit: int, encodings: list[str] | None = None) -> str:
    """The longest prefix of ``text`` whose encoding has at most ``limit`` bytes.

    Parameters
    ----------
    text : str
        The value.
    limit : int
        Maximum length in bytes (the VR's, PS3.5 Table 6.2-1).
    encodings : list of str, optional
        Python encodings of the dataset's SpecificCharacterSet
        (``pydicom.charset.convert_encodings``); None for UTF-8 (ISO_IR 192).

    Examples
    --------
    >>> fit_bytes("T2 relaxation \u00e9\u00e9", 16)
    'T2 relaxation \u00e9'
    """
    if fits_bytes(text, limit, encodings):
        return text
    if encodings is None:
        # Cut the bytes, drop an incomplete trailing character.
        return text.encode("utf-8")[:limit].decode("utf-8", "ignore")
    low, high = 0, min(len(text), limit)  # text[:low] fits, text[:high + 1] does not
    while low < high:
        middle = (low + high + 1) // 2
        if _size(text[:middle], encodings) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]
