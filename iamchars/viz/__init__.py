"""Pictures for people: boxes over lines, contact sheets, stacked panels."""
