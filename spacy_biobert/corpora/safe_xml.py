"""The one XML parser every XML reader (BioC, MeSH) uses."""

from typing import Any


def secure_iterparse(source: Any, tag: Any, *, huge_tree: bool = False, **options: Any) -> Any:
    """lxml's `iterparse` over `source` (a path or binary file) for "end"
    events of `tag`, never resolving entities (external, parameter or
    internal), never loading a DTD, never touching the network: set
    explicitly, not left to lxml's defaults, which have changed between
    versions. The one place every XML reader (BioC, MeSH) gets its parser."""
    from lxml import etree

    return etree.iterparse(
        source,
        events=("end",),
        tag=tag,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
        **options,
    )
