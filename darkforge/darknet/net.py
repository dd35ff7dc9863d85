"""[net]: the input size, and every training setting of both Darknets kept as `train: {darknet:}`.

Nothing in [net] but channels, height and width changes what the network computes, so its
other keys are carried for the round trip (and for a trainer that reads them): the keys both
Darknets read (parse_net_options), typed; keys neither reads (e.g. `max_epochs`) as written, with
a warning that Darknet ignores them. A repeated key: the first one counts (option_find).
"""

from __future__ import annotations

from typing import Any

from darkforge.darknet.cfgtext import Section

NET_KEYS = {key: "int" for key in ("batch", "subdivisions", "time_steps", "notruth", "random", "adam")}
NET_KEYS |= {key: "int" for key in ("max_crop", "min_crop", "center", "burn_in", "step", "max_batches")}
NET_KEYS |= {key: "float" for key in ("learning_rate", "momentum", "decay", "B1", "B2", "eps", "clip")}
NET_KEYS |= {key: "float" for key in ("max_ratio", "min_ratio", "angle", "aspect", "saturation")}
NET_KEYS |= {key: "float" for key in ("exposure", "hue", "power", "scale", "gamma")}
NET_KEYS |= {"policy": "policy", "steps": "ints", "scales": "floats", "seq_scales": "floats"}
# The AlexeyAB fork's parse_net_options (training, augmentation, memory and display settings).
_FORK_NET = (
    "learning_rate_min sgdr_cycle sgdr_mult track augment_speed sequential_subdivisions try_fix_nan "
    "weights_reject_freq equidistant_point badlabels_rejection_percentage num_sigmas_reject_badlabels "
    "ema_alpha use_cuda_graph loss_scale dynamic_minibatch optimized_memory workspace_size_limit_MB "
    "flip blur gaussian_noise mixup cutmix mosaic letter_box mosaic_bound contrastive "
    "contrastive_jit_flip contrastive_color unsupervised label_smooth_eps resize_step attention "
    "adversarial_lr max_chart_loss show_receptive_field"
)
NET_KEYS |= {key: "number" for key in _FORK_NET.split()}
SHAPE_KEYS = ("channels", "height", "width")


def read_net(net: Section, notes: list[str]) -> tuple[tuple[int, ...], dict[str, Any]]:
    """The input shape (C, H, W) and the carried settings."""
    shape = tuple(net.get(key, "int", 0) for key in SHAPE_KEYS)
    if not all(d > 0 for d in shape):
        raise net.error("needs channels, height and width", "darkforge builds image networks")
    inputs = net.get("inputs", "int", shape[0] * shape[1] * shape[2])
    if inputs != shape[0] * shape[1] * shape[2]:
        raise net.error("`inputs` differs from channels·height·width", "darkforge builds image networks")
    settings: dict[str, Any] = {}
    for key in net.options:
        if key in NET_KEYS:
            settings[key] = net.get(key, NET_KEYS[key])
        elif key not in net.seen:
            net.seen.add(key)
            settings[key] = net.get(key, "carried")
            _, line = net.options[key]
            notes.append(f"{net.file}:{line}: [net]: {key}: Darknet ignores it; kept as written")
    return shape, settings


__all__ = ["NET_KEYS", "read_net"]
