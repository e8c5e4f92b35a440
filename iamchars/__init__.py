"""iamchars: a character-level dataset and recogniser built from the IAM Handwriting Database."""

__version__ = "0.1.0"
