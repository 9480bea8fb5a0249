import numpy as np
import pytest
import torch

from featstore.audio import cut, decode
from featstore.extractors import ExtractContext, make_extractor
from featstore.extractors.configs import MFCCConfig


def _mfcc(batch: np.ndarray, **kw) -> np.ndarray:
    ext = make_extractor("mfcc", MFCCConfig(**kw))
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    return ext.extract(x, torch.full((len(batch),), batch.shape[1]))["mfcc"]


def test_shape_follows_parameters():
    out = _mfcc(np.random.default_rng(0).normal(size=(3, 32000)) * 0.1, n_mfcc=20, hop_length=256)
    assert out.shape == (3, 1 + 32000 // 256, 20)


def test_batch_independence():
    """A chunk's features must not depend on its batch mates (torchaudio's batch-wide top_db)."""
    rng = np.random.default_rng(1)
    # very different loudness across the batch makes a batch-wide dB floor visible
    batch = rng.normal(size=(64, 32000)).astype(np.float32) * np.logspace(-4, 0, 64)[:, None]
    batch[5] = 0.0  # digital silence among them
    full = _mfcc(batch)
    for i in (0, 5, 31, 63):
        np.testing.assert_allclose(_mfcc(batch[i : i + 1])[0], full[i], rtol=1e-4, atol=1e-3)


def test_silence_is_finite():
    out = _mfcc(np.zeros((2, 32000)))
    assert np.isfinite(out).all()


def test_parity_with_librosa_on_real_audio(real_data):
    librosa = pytest.importorskip("librosa")
    path = sorted(real_data.glob("test-other/*/*/*.flac"))[0]
    chunks, _, _ = cut(decode(str(path)).samples, 32000)
    ours = _mfcc(chunks)
    ref = np.stack([librosa.feature.mfcc(y=c, sr=16000, n_mfcc=13, n_fft=2048, hop_length=512,
                                         n_mels=128).T for c in chunks])
    assert ours.shape == ref.shape
    # stated tolerance (README): max abs difference < 0.01 on coefficients of magnitude ~100s
    assert np.abs(ours - ref).max() < 1e-2
    assert np.abs(ref).max() > 50


def test_invalid_parameters_are_rejected():
    from featstore.errors import UserError

    with pytest.raises(ValueError, match="n_mfcc"):  # the CLI: one line, exit 2 (test_cli_flags)
        MFCCConfig(n_mfcc=200, n_mels=128)
    with pytest.raises(UserError, match="unknown feature"):
        make_extractor("spectrogram")


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")
@pytest.mark.parametrize("n_fft,n_mels", [(2048, 128), (512, 40), (400, 80), (256, 128)])
def test_mel_bands_cover_the_filterbank(n_fft, n_mels):
    """The banded mel projection is the dense one without its zeros: same result."""
    import torchaudio.functional as AF

    from featstore.extractors.mfcc import MEL_BANDS, mel_bands

    fbank = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, 8000.0, n_mels, 16000, norm="slaney",
                               mel_scale="slaney")
    power = torch.rand(3, 7, n_fft // 2 + 1) * 100
    banded = torch.zeros(3, 7, n_mels)
    for m0, m1, lo, hi, weights in mel_bands(fbank, MEL_BANDS):
        assert torch.count_nonzero(fbank[:lo, m0:m1]) == torch.count_nonzero(fbank[hi:, m0:m1]) == 0
        banded[..., m0:m1] = power[..., lo:hi] @ weights
    dense = power @ fbank
    torch.testing.assert_close(banded, dense, rtol=1e-5, atol=1e-6)


def test_cpu_blocks_and_batch_sizes_agree():
    """CPU batches go through in blocks on a thread pool: any batch size, block size or pool
    gives the same features."""
    from featstore.extractors.mfcc import MFCCExtractor

    batch = np.random.default_rng(2).normal(size=(9, 32000)).astype(np.float32) * 0.1
    ref = _mfcc(batch)
    ext = MFCCExtractor(MFCCConfig(), ExtractContext())
    x, n = torch.from_numpy(batch), torch.full((9,), 32000)
    for block in (1, 4, 16):
        ext.block = block
        np.testing.assert_allclose(ext.extract(x, n)["mfcc"], ref, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(ext.extract(x[3:5], n[3:5])["mfcc"], ref[3:5], rtol=1e-5,
                                   atol=1e-4)
