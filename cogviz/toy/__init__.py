"""The embedded toy CogVideoX I2V model at run time: its components, shapes-world scenes and shipped
weights (the trainer is :mod:`cogviz.trainer`)."""
