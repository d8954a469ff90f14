"""Go's text/tabwriter (flags 0), so output lines up exactly as `oc` and `kubectl` print it.

A cell is text terminated by a tab; the text after a line's last tab is not a cell
and does not take part in alignment. Consecutive lines that have a cell in the same
column form a block whose cells are padded to the widest cell of the block plus
`padding`. With a tab as the pad character, widths are rounded up to a multiple of
`tabwidth` and padding is written as tabs, as Go does.
"""

from __future__ import annotations

from collections.abc import Sequence


def _pad(text_width: int, cell_width: int, tabwidth: int, padchar: str) -> str:
    if padchar == "\t":
        cell_width = (cell_width + tabwidth - 1) // tabwidth * tabwidth
        return "\t" * ((cell_width - text_width + tabwidth - 1) // tabwidth)
    return padchar * (cell_width - text_width)


class _Formatter:
    def __init__(self, lines: Sequence[Sequence[str]], minwidth: int, tabwidth: int, padding: int, padchar: str):
        self.lines = lines
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.widths: list[int] = []
        self.out: list[str] = []

    def write_lines(self, first: int, last: int) -> None:
        for index in range(first, last):
            parts = []
            for column, cell in enumerate(self.lines[index]):
                parts.append(cell)
                if column < len(self.widths):
                    parts.append(_pad(len(cell), self.widths[column], self.tabwidth, self.padchar))
            self.out.append("".join(parts))

    def format(self, first: int, last: int) -> None:
        column = len(self.widths)
        this = first
        while this < last:
            if column >= len(self.lines[this]) - 1:
                this += 1
                continue
            # A block of lines with a cell in this column starts here.
            self.write_lines(first, this)
            first = this
            width = self.minwidth
            while this < last and column < len(self.lines[this]) - 1:
                width = max(width, len(self.lines[this][column]) + self.padding)
                this += 1
            self.widths.append(width)
            self.format(first, this)
            self.widths.pop()
            first = this
        self.write_lines(first, last)


def tabwrite(text: str, *, minwidth: int = 0, tabwidth: int = 8, padding: int = 1, padchar: str = "\t") -> str:
    """Align `text` as Go's tabwriter.NewWriter(out, minwidth, tabwidth, padding, padchar, 0) would."""
    lines = [line.split("\t") for line in text.split("\n")]
    formatter = _Formatter(lines, minwidth, tabwidth, padding, padchar)
    formatter.format(0, len(lines))
    return "\n".join(formatter.out)


def table(rows: Sequence[Sequence[str]], *, padding: int = 3, minwidth: int = 6) -> str:
    """Rows as kubectl prints tables (spaces; minimum width 6, padding 3 by default), each line ending in a newline."""
    text = "".join("\t".join(row) + "\n" for row in rows)
    return tabwrite(text, minwidth=minwidth, tabwidth=8, padding=padding, padchar=" ")
