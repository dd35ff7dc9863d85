"""torch modules for the layer types, the Network that runs a plan, and build()."""

from darkforge.nn.network import Network, build, forward_order_copy

__all__ = ["Network", "build", "forward_order_copy"]
