"""Which mappings the agent drops after compiling the probe: clean, read-only, compiler only."""

from __future__ import annotations

from agent.probe import compiler_mappings

SMAPS = """\
7f0000000000-7f0000200000 r--p 00000000 fe:01 11 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Size:               2048 kB
Rss:                1024 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
7f0000200000-7f0004000000 r-xp 00200000 fe:01 11 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Size:              63488 kB
Anonymous:             0 kB
7f0004000000-7f0004100000 r--p 03e00000 fe:01 11 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Size:               1024 kB
Anonymous:           900 kB
7f0004100000-7f0004200000 rw-p 03f00000 fe:01 11 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Anonymous:             8 kB
7f0005000000-7f0005001000 r-xp 00000000 fe:01 12 /usr/lib/llvm-14/lib/libclang-cpp.so.14
Anonymous:             0 kB
7f0006000000-7f0006001000 r-xp 00000000 fe:01 13 /usr/lib/x86_64-linux-gnu/libssl.so.3
Anonymous:             0 kB
7f0007000000-7f0007001000 rw-p 00000000 00:00 0
Anonymous:             4 kB
7f0008000000-7f0008001000 r-xp 00000000 fe:01 14 /opt/x/libbcc.so.0.26.0 (deleted)
Anonymous:             0 kB
"""


def test_only_clean_read_only_compiler_mappings() -> None:
    assert compiler_mappings(SMAPS) == [
        (0x7F0000000000, 0x200000),  # read-only data, untouched
        (0x7F0000200000, 0x3E00000),  # code
        (0x7F0005000000, 0x1000),  # libclang-cpp code
        (0x7F0008000000, 0x1000),  # a path with a suffix still names the library
    ]


def test_nothing_to_drop() -> None:
    assert compiler_mappings("") == []
    assert compiler_mappings(SMAPS, names=("libnothing",)) == []
