"""Detection: data (boxes beside pixels), losses and metrics for detector heads (docs/detection.md)."""
