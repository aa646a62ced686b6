"""Pipeline stages beyond the core: feature extractors, torch models, sinks."""
