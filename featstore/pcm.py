"""The one int16 PCM scale: decoding (featstore/audio.py), the stored ``audio`` feature
(featstore/extractors/audio.py) and the models reading it (models/inputs.py) all use it, so a
16-bit file's samples come back from the store bit for bit."""

PCM_SCALE = 32768  # int16 k <-> float k / 2**15, as libsndfile and soundfile read 16-bit audio
PCM_MIN, PCM_MAX = -32768, 32767
