"""Go text/tabwriter as the CLI uses it: oc describe (tab padding) and kubectl tables (space padding)."""

from __future__ import annotations

from imagestreams.cli.tabwriter import table, tabwrite


def test_tab_padding_rounds_the_column_to_the_tab_width() -> None:
    # Widest cell "Image Repository:" (17) + padding 1 = 18, rounded up to 24: three tabs after "Name:".
    text = "Name:\tapp\nImage Repository:\t<none>\nTags:\t1\n"
    assert tabwrite(text) == "Name:\t\t\tapp\nImage Repository:\t<none>\nTags:\t\t\t1\n"


def test_a_line_without_tabs_ends_the_column_block() -> None:
    text = "Name:\tapp\n\nA much longer label:\tx\nB:\ty\n"
    assert tabwrite(text) == "Name:\tapp\n\nA much longer label:\tx\nB:\t\t\ty\n"


def test_empty_leading_cells_are_padded_like_the_others() -> None:
    text = "Labels:\ta=1\n\tb=2\nName:\tx\n"
    assert tabwrite(text) == "Labels:\ta=1\n\tb=2\nName:\tx\n"
    wide = "Image Repository:\tr\n\tcontinued\n"
    assert tabwrite(wide) == "Image Repository:\tr\n\t\t\tcontinued\n"


def test_text_after_the_last_tab_is_not_a_cell_and_is_not_padded() -> None:
    assert tabwrite("a\tb\tc\nlonger\tx\n") == "a\tb\tc\nlonger\tx\n"


def test_nested_columns_are_aligned_within_their_own_block() -> None:
    text = "a\tb\tc\naaaaaaaaa\tbbbbbbbbbb\tc\nx\ty\n"
    assert tabwrite(text, padchar=" ", padding=1) == "a         b          c\naaaaaaaaa bbbbbbbbbb c\nx         y\n"


def test_text_without_final_newline_is_kept_as_is() -> None:
    assert tabwrite("a\tb\nc") == "a\tb\nc"


def test_table_pads_with_spaces_like_kubectl() -> None:
    rows = [["NAME", "LOCAL"], ["app", "true"], ["a-much-longer-name", "false"]]
    assert (
        table(rows, padding=2, minwidth=0)
        == "NAME                LOCAL\napp                 true\na-much-longer-name  false\n"
    )
    # kubectl get: minimum width 6, padding 3.
    assert table([["#", "AGE"], ["0", "5s"]]) == "#     AGE\n0     5s\n"
