"""torch modules for the layer types (layers.py, channel.py, block.py), and the Network that runs
a plan (network.py); `darkforge.build` compiles a file into one (darkforge.weights.transfer)."""
