"""Reading, validating, splitting and downloading the IAM Handwriting Database."""
