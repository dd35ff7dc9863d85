"""`darkforge draw` (being written: see issue 3)."""
