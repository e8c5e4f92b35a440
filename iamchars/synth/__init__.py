"""A synthetic handwriting corpus in IAM's exact on-disk format, with the true box of every character."""
