"""Acquisition adapters: each turns one family of inputs into Chunks in the LSL clock."""
