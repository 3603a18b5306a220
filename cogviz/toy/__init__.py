"""The embedded toy CogVideoX I2V model: shapes-world data, architecture, training, weights."""
