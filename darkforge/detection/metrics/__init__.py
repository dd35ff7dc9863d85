"""How a detector is measured and shown: NMS, COCO evaluation (pycocotools), result JSON, drawn
boxes and the run directory's detection reports (docs/detection.md, "Evaluation and reports")."""
