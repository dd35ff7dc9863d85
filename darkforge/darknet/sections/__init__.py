"""One file per Darknet section (or per family of sections that share a reader): each declares
`SECTIONS`, a list of darkforge.darknet.catalog.DarknetSection, with its reader, refused keys,
layer types and writers. Adding a section is adding a file here; darkforge/darknet/catalog.py finds it."""
