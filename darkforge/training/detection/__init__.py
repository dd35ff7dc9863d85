"""Detection: data with boxes (data/), the losses of detection heads (loss/), and what a trained
detector is measured and shown by (metrics/). A part beside training/ (docs/detection.md)."""
