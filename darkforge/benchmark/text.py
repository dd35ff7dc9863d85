"""The benchmark result as a table (the CLI prints it; the JSON is the result itself)."""

from __future__ import annotations

from typing import Any

from darkforge.views.memory import fmt_bytes


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(result: dict[str, Any]) -> str:
    head = (
        f"device {result['device']}, precision {result['precision']}"
        f"{', channels_last' if result['channels_last'] else ''}, batch {result['batch']}, "
        f"{result['rounds']} rounds (median), torch {result['torch']}, {result['threads']} threads"
    )
    rows = [("arch", "mode", "train img/s", "infer img/s", "b1 median ms", "b1 p90 ms", "peak mem")]
    notes = []
    for entry in result["models"]:
        for mode, m in entry["modes"].items():
            if "error" in m:
                rows.append((entry["arch"], mode, "-", "-", "-", "-", "-"))
                notes.append(f"{entry['arch']} {mode}: not measured ({m['error']})")
                continue
            peak = m["peak_memory_bytes"]
            rows.append(
                (
                    entry["arch"],
                    mode,
                    _num(m["train_img_s"], ".1f"),
                    _num(m["infer_img_s"], ".1f"),
                    f"{m['latency_ms']['median']:.2f}",
                    f"{m['latency_ms']['p90']:.2f}",
                    fmt_bytes(peak) if peak is not None else f"≈{fmt_bytes(entry['train_bytes_estimate'])}",
                )
            )
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if k < 2 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    if result["ratios"]:
        first, second = (e["arch"] for e in result["models"])
        for mode, r in result["ratios"].items():
            parts = [
                f"{k.removesuffix('_img_s')} {r[k]:.2f}×" for k in ("train_img_s", "infer_img_s") if r[k]
            ]
            if r["latency_median"]:
                parts.append(f"latency {r['latency_median']:.2f}×")
            if parts:
                lines.append(f"{first} / {second} ({mode}): {', '.join(parts)}")
    if any(m.get("peak_memory_bytes") is None for e in result["models"] for m in e["modes"].values()):
        lines.append("peak mem ≈: the static training estimate (summary); measured on CUDA only")
    return "\n".join([head, "", *lines, *notes])
