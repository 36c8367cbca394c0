"""Files are written whole or not at all, with the mode the umask asks for."""

from __future__ import annotations

import os
import stat

import pytest

from engine.files import atomic_write


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_finished_file_follows_the_umask(tmp_path, umask, mode):
    before = os.umask(umask)
    try:
        atomic_write(tmp_path / "out.png", lambda tmp: open(tmp, "wb").write(b"data"))
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == mode


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    def half(tmp):
        open(tmp, "wb").write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.png", half)
    assert list(tmp_path.iterdir()) == []
