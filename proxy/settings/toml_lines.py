"""Where in a TOML file a table or a field is, so that an error can name its line.

tomllib reports values, not positions; both configuration files (the routing table and the
keys file) are tables of tables, `[<section>.<name>]`, and this finds their lines.
"""

from __future__ import annotations

import re


def line_of(text: str, section: str, name: str, field: str | None = None) -> int:
    """The line of `field` in table `[section.name]`, else of the table's header (else 1).

    The name may be bare, "double-quoted" or 'single-quoted', with blanks around the dot.
    """
    quoted = re.escape(name)
    header = re.compile(rf'^[ \t]*\[[ \t]*{re.escape(section)}[ \t]*\.[ \t]*(?:"{quoted}"|\'{quoted}\'|{quoted})'
                        r"[ \t]*\]", re.M)
    match = header.search(text)
    if match is None:
        return 1
    start = match.start()
    if field:
        next_table = re.compile(r"^[ \t]*\[", re.M).search(text, match.end())
        end = next_table.start() if next_table else len(text)
        found = re.compile(r"^[ \t]*" + re.escape(field) + r"[ \t]*=", re.M).search(text, match.end(), end)
        start = found.start() if found else start
    return text.count("\n", 0, start) + 1
