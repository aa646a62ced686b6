"""Applications built on the pipeline: the live viewer."""
