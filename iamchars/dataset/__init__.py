"""The character dataset: class sets, normalised crops, the export stage, QA pictures and the card."""
