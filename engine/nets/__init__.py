"""The networks methods are built from, as ``nn.Module``s and their loaders.

Nets take paths or tensors and never look weights up: the method or trainer that builds
a net asks the weight store (``engine.weights``) and passes the file in.
"""
