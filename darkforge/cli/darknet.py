"""`darkforge convert` (being written: see issue 5)."""
