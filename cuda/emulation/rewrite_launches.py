"""Rewrites a .cu file for the host compiler (the emulated test module, see emulator.h):

    kernel<T><<<grid, block, smem, stream>>>(args);
becomes
    ::f3d_emu::launch(::f3d_emu::Config(grid, block, smem, stream), [&] { kernel<T>(args); });

The call stays a call, so template arguments are still deduced from `args` as nvcc deduces them.
Usage: python rewrite_launches.py IN.cu OUT.cpp
"""

import re
import sys

LAUNCH = re.compile(r"([A-Za-z_]\w*(?:<[^<>;]*>)?)<<<(.*?)>>>\(", re.S)


def closing_paren(text: str, start: int) -> int:
    """Index of the ')' that closes the '(' just before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise SystemExit(f"unbalanced parentheses in a kernel launch at offset {start}")


def rewrite(text: str, source: str) -> str:
    out, pos = [], 0
    for m in LAUNCH.finditer(text):
        if m.start() < pos:
            raise SystemExit("a kernel launch inside another launch's arguments is not supported")
        end = closing_paren(text, m.end())
        kernel, config, args = m.group(1), m.group(2), text[m.end() : end]
        out.append(text[pos : m.start()])
        out.append(f"::f3d_emu::launch(::f3d_emu::Config({config}), [&] {{ {kernel}({args}); }})")
        pos = end + 1
    out.append(text[pos:])
    result = "".join(out)
    if "<<<" in result:
        raise SystemExit("a kernel launch was left unrewritten")
    return f'#line 1 "{source}"\n' + result  # compiler messages name the .cu file


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    with open(dst, "w", encoding="utf-8") as f:
        f.write(rewrite(text, src))


if __name__ == "__main__":
    main()
