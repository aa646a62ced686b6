"""The datasets that come with bci-stream, registered in the ``bci_stream.datasets`` entry-point group."""
