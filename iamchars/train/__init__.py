"""Training a CNN character classifier on the packed arrays: data on the device, models, loop, metrics, plots."""
