"""The embedded model's trainer: its data (shapes world, photographs, camera moves), the staged
training run, its evaluation and its model card. ``python -m cogviz.trainer`` (or ``cogviz
train-toy``, ``make train``) trains the model from a seed; its extra needs come with
``pip install -e '.[train]'``. The runtime model itself — its components, scenes and shipped
weights — is :mod:`cogviz.toy`; nothing at run time imports this package.
"""
