"""bci-stream: live EEG in, emotion labels out, with no calibration for a new person."""

from bci_stream.stream import Chunk, StreamInfo

__version__ = "0.1.0"
__all__ = ["Chunk", "StreamInfo", "__version__"]
