"""The learned aligner (the `aligned` method): word strips and cut decoding (`alignment`), the network
(`network`), self-training on a corpus's own word labels (`selftrain`), the corpus-wide pass that build-dataset
runs (`corpus`), and pretraining on a synthetic corpus with its shipped starting weights (`pretrain`,
`weights.pt`). Configured by `config.AlignConfig` (`[segment.align]`)."""
