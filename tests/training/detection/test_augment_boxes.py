"""Batched box augmentation: boxes move with the pixels, stay inside, and a seed fixes the batch."""

from __future__ import annotations

import pytest
import torch

from darkforge.training.detection.data import BoxAugment, augment
from darkforge.training.detection.data.augment import Draw, apply, jitter_colour

S = 32
STILL = BoxAugment(flip=0.0, scale=0.0, translate=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0)


def numbers(b: int, **given) -> Draw:
    """A Draw that changes nothing except what is given."""
    values = {
        "partners": None,
        "centres": None,
        "gain": torch.ones(b, dtype=torch.float64),
        "shift": torch.zeros(b, 2, dtype=torch.float64),
        "mirror": torch.zeros(b, dtype=torch.bool),
        "hsv": torch.tensor([[0.0, 1, 1]] * b, dtype=torch.float64),
    }
    return Draw(**(values | given))


def painted(b: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose boxes are filled each with its own colour (class = box number), on a dim
    background: after any geometric augmentation a kept box's centre pixel must show its colour."""
    g = torch.Generator().manual_seed(0)
    images = torch.full((b, 3, S, S), 20, dtype=torch.uint8)
    rows = []
    for i in range(b):
        for j, (x1, y1, x2, y2) in enumerate([(2, 3, 13, 14), (17, 2, 30, 12), (5, 18, 27, 30)]):
            n = 3 * i + j
            images[i, :, y1:y2, x1:x2] = torch.tensor([40 + 5 * n, 250 - 5 * n, 100 + 3 * n]).view(3, 1, 1)
            rows.append([i, n, x1, y1, x2, y2])
    return images, torch.tensor(rows, dtype=torch.float32)[torch.randperm(3 * b, generator=g)]


def colour(n: int) -> list[int]:
    return [40 + 5 * n, 250 - 5 * n, 100 + 3 * n]


def test_nothing_drawn_changes_nothing():
    images, targets = painted()
    out, rows = augment(images, targets, torch.Generator().manual_seed(1), mosaic=False, config=STILL)
    assert torch.equal(out, images)
    assert torch.equal(rows, targets)


def test_flipped_boxes_equal_the_hand_computation():
    images, targets = painted(2)
    flip = BoxAugment(flip=1.0, scale=0.0, translate=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0)
    out, rows = augment(images, targets, torch.Generator().manual_seed(1), mosaic=False, config=flip)
    assert torch.equal(out, images.flip(3))
    first = rows[(rows[:, 0] == 0) & (rows[:, 1] == 0)]  # (2, 3, 13, 14) on a 32-px image
    assert first.tolist() == [[0.0, 0.0, 32 - 13, 3, 32 - 2, 14]]
    assert len(rows) == len(targets)


def test_scale_and_shift_move_boxes_by_the_affine_map():
    images, targets = painted(1)
    draw = numbers(
        1,
        gain=torch.tensor([0.5], dtype=torch.float64),
        shift=torch.tensor([[3.0, -2.0]], dtype=torch.float64),
    )
    out, rows = apply(images, targets, draw, STILL)
    # p_out = (p - 16) * 0.5 + 16 + shift: (2, 3, 13, 14) -> (9, 9.5, 14.5, 15) + (3, -2)
    box = rows[rows[:, 1] == 0, 2:]
    torch.testing.assert_close(box, torch.tensor([[12.0, 7.5, 17.5, 13.0]]))
    assert out[0, :, 0, 0].tolist() == [114, 114, 114]  # past the shrunk image: the letterbox grey
    assert out[0, :, 10, 14].tolist() == colour(0)  # from canvas (7, 9), inside box 0


def test_mosaic_puts_each_image_and_its_boxes_in_its_quadrant():
    images = torch.stack([torch.full((3, S, S), v, dtype=torch.uint8) for v in (10, 60, 110, 160)])
    targets = torch.tensor([[i, i, 8, 8, 24, 24] for i in range(4)], dtype=torch.float32)
    partners = torch.tensor([[1, 2, 3], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    centres = torch.tensor([[S, S], [S, S], [S, S], [S, S]])
    out, rows = apply(images, targets, numbers(4, partners=partners, centres=centres), STILL)
    # canvas 64×64, centre (32, 32); the output is the canvas's middle [16, 48)²
    assert (out[0, :, :16, :16] == 10).all() and (out[0, :, :16, 16:] == 60).all()
    assert (out[0, :, 16:, :16] == 110).all() and (out[0, :, 16:, 16:] == 160).all()
    mine = rows[rows[:, 0] == 0]
    assert mine.tolist() == [
        [0, 0, 0, 0, 8, 8],  # top-left image: canvas (8, 8, 24, 24) - 16, cut by the view
        [0, 1, 24, 0, 32, 8],  # top-right
        [0, 2, 0, 24, 8, 32],  # bottom-left
        [0, 3, 24, 24, 32, 32],  # bottom-right
    ]


def test_mosaic_off_centre_cuts_images_at_the_canvas_edge():
    images = torch.stack([torch.full((3, S, S), v, dtype=torch.uint8) for v in (10, 60)])
    targets = torch.tensor([[0, 0, 0, 0, 32, 32], [1, 1, 2, 2, 10, 10]], dtype=torch.float32)
    partners = torch.tensor([[1, 1, 1], [0, 0, 0]])
    centres = torch.tensor([[20, 44], [16, 16]])
    out, rows = apply(images, targets, numbers(2, partners=partners, centres=centres), STILL)
    # image 0 top-left at (20 - 32, 44 - 32) = (-12, 12): its box shows as (0, 12, 20, 44) on the
    # canvas, (0, 0, 4, 28) in the output (canvas - 16): 112/1024 of it stays, more than 10%
    assert rows[(rows[:, 0] == 0) & (rows[:, 1] == 0)].tolist() == [[0, 0, 0, 0, 4, 28]]
    assert (out[0, :, :28, :4] == 10).all() and (out[0, :, 28:, :4] == 60).all()
    # image 1's box (2, 2, 10, 10) in the top-right quadrant at (20, 12): (22, 14, 30, 22) -> (6, -2, 14, 6)
    assert rows[(rows[:, 0] == 0) & (rows[:, 1] == 1)][:1].tolist() == [[0, 1, 6, 0, 14, 6]]


def test_boxes_that_leave_the_view_are_clipped_then_dropped():
    images, _ = painted(1)
    targets = torch.tensor([[0, 0, 0, 0, 30, 10]], dtype=torch.float32)
    shift = torch.tensor([[-27.0, 0.0]], dtype=torch.float64)  # 3 px of 30 stay: 10% of its area
    keep = BoxAugment(min_visible=0.1, min_side=2)
    assert apply(images, targets, numbers(1, shift=shift), keep)[1].tolist() == [[0, 0, 0, 0, 3, 10]]
    assert len(apply(images, targets, numbers(1, shift=shift), BoxAugment(min_visible=0.2))[1]) == 0
    assert len(apply(images, targets, numbers(1, shift=shift), BoxAugment(min_side=4))[1]) == 0


@pytest.mark.parametrize("mosaic", [False, True])
def test_boxes_stay_inside_and_keep_their_pixels(mosaic):
    images, targets = painted(6)
    geometry = BoxAugment(hsv_h=0.0, hsv_s=0.0, hsv_v=0.0)
    kept = 0
    for seed in range(12):
        out, rows = augment(
            images, targets, torch.Generator().manual_seed(seed), mosaic=mosaic, config=geometry
        )
        assert out.shape == images.shape and out.dtype == torch.uint8
        boxes = rows[:, 2:]
        assert ((boxes >= 0) & (boxes <= S)).all()
        assert ((boxes[:, 2:] - boxes[:, :2]) >= 2).all()
        for b, n, x1, y1, x2, y2 in rows.tolist():
            if x2 - x1 >= 4 and y2 - y1 >= 4:  # bilinear: the middle of a painted box is its colour
                pixel = out[int(b), :, int((y1 + y2) / 2), int((x1 + x2) / 2)]
                assert (pixel.int() - torch.tensor(colour(int(n)))).abs().max() <= 1, (seed, n)
                kept += 1
    assert kept > 50


def test_a_seed_fixes_the_batch():
    images, targets = painted()
    runs = [augment(images, targets, torch.Generator().manual_seed(s), mosaic=True) for s in (5, 5, 6)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][0], runs[2][0])


def test_no_boxes_at_all():
    images, _ = painted(3)
    for mosaic in (False, True):
        out, rows = augment(images, torch.zeros(0, 6), torch.Generator().manual_seed(0), mosaic=mosaic)
        assert out.shape == images.shape and rows.shape == (0, 6)


def test_hue_turns_about_the_grey_axis_and_saturation_keeps_the_max():
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 255
    third = torch.tensor([[1 / 3, 1.0, 1.0]] * 2)  # 120°: red -> green -> blue -> red
    torch.testing.assert_close(jitter_colour(x, third), x[:, [2, 0, 1]], atol=1e-3, rtol=0)
    grey = jitter_colour(x, torch.tensor([[0.0, 0.0, 1.0]] * 2))  # saturation 0: every channel = max
    torch.testing.assert_close(grey, x.amax(1, keepdim=True).expand_as(x))
    half = jitter_colour(x, torch.tensor([[0.0, 1.0, 0.5]] * 2))
    torch.testing.assert_close(half, x * 0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_seed_gives_the_same_batch_on_the_gpu():
    images, targets = painted(8)
    cpu = augment(images, targets, torch.Generator().manual_seed(3), mosaic=True)
    gpu = augment(images.cuda(), targets.cuda(), torch.Generator().manual_seed(3), mosaic=True)
    assert gpu[0].device.type == "cuda"
    assert (gpu[0].cpu().int() - cpu[0].int()).abs().max() <= 1  # float rounding of the bilinear taps
    torch.testing.assert_close(gpu[1].cpu(), cpu[1])
