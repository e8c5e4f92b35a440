"""Character boxes from word boxes: line ink statistics (vertical), cursive-font alignment (horizontal),
and ink-aware refinement. Everything here is a pure function on arrays."""
