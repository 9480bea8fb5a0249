"""featstore: batched speech features (MFCC, wav2vec2, raw audio) in a checksummed HDF5 store."""

from featstore.store.reader import FeatureInfo, Store, open

__version__ = "0.1.0"
__all__ = ["FeatureInfo", "Store", "open", "__version__"]
