"""The module of a user block's use: the block's layers, named by their ids (or positions), run as
a graph of their own. With the use's id `stage3` and `repeat: 4`, module names read
`stage3.2.conv1`: the checkpoint keys follow the structure."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from darkforge.nn.graph import module_for, run, schedule
from darkforge.spec.base import Shape
from darkforge.spec.blocks import BlockUse


class BlockModule(nn.Module):
    def __init__(self, spec: BlockUse, inputs: Sequence[Shape]) -> None:
        super().__init__()
        inst = spec.instance(inputs)
        shapes = {-(k + 1): shape for k, shape in enumerate(inputs)}
        shapes |= {info.index: info.output for info in inst.infos}
        for info in inst.infos:
            # ids nn.Module would refuse ("forward", "training") were refused on reading (spec.reserved)
            self.add_module(info.name, module_for(info.spec, [shapes[s] for s in info.sources]))
        self._sources = [info.sources for info in inst.infos]
        self._outputs = (inst.output,)
        self._free = schedule(inst.infos, self._outputs)

    def forward(self, *inputs: Tensor) -> Tensor:
        return run(list(self.children()), self._sources, self._free, self._outputs, inputs)[0]
