import numpy as np
import pytest
import soundfile as sf

from featstore import audio


def test_chunk_spans_policy():
    assert audio.chunk_spans(0, 100) == []
    assert audio.chunk_spans(40, 100) == [(0, 40)]  # short utterance: one padded chunk
    assert audio.chunk_spans(100, 100) == [(0, 100)]
    assert audio.chunk_spans(299, 100) == [(0, 100), (100, 100)]  # tail dropped


def test_cut_pads_short_and_keeps_values():
    x = np.arange(250, dtype=np.float32)
    chunks, starts, counts = audio.cut(x, 100)
    assert chunks.shape == (2, 100)
    assert starts.tolist() == [0, 100] and counts.tolist() == [100, 100]
    np.testing.assert_array_equal(chunks[1], x[100:200])
    chunks, starts, counts = audio.cut(x[:30], 100)
    assert counts.tolist() == [30]
    np.testing.assert_array_equal(chunks[0, :30], x[:30])
    assert not chunks[0, 30:].any()


def test_decode_stereo_and_resample(tmp_path):
    t = np.arange(8000) / 8000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "s.wav", np.stack([left, left * 0], axis=1), 8000)
    d = audio.decode(str(tmp_path / "s.wav"), 16000)
    assert len(d.samples) == 16000 and d.samples.dtype == np.float32
    assert any("downmixed 2" in n for n in d.notes)
    assert any("resampled 8000" in n for n in d.notes)
    assert abs(np.abs(d.samples).max() - 0.25) < 0.02  # mean of the two channels


def test_decode_rejects_bad_files(tmp_path):
    (tmp_path / "text.flac").write_text("this is not audio")
    with pytest.raises(audio.AudioError, match="cannot decode"):
        audio.decode(str(tmp_path / "text.flac"))
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(audio.AudioError, match="empty"):
        audio.decode(str(tmp_path / "empty.wav"))


def test_decode_notes_silence(tmp_path):
    sf.write(tmp_path / "z.flac", np.zeros(16000), 16000)
    d = audio.decode(str(tmp_path / "z.flac"))
    assert "digital silence (kept)" in d.notes


@pytest.mark.parametrize("fmt,subtype,channels", [("FLAC", "PCM_16", 1), ("WAV", "PCM_16", 2),
                                                  ("WAV", "PCM_24", 1), ("WAV", "FLOAT", 1)])
def test_decode_gives_libsndfile_floats(tmp_path, fmt, subtype, channels):
    """16-bit files are read as int16 and scaled by numpy (faster): the same floats as
    libsndfile's own conversion, and other formats as before."""
    rng = np.random.default_rng(0)
    data = np.clip(rng.normal(size=(16000, channels)) * 0.3, -1, 1).astype(np.float32)
    data[0], data[1] = -1.0, 1.0  # the extremes
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, data, 16000, format=fmt, subtype=subtype)
    expected = sf.read(path, dtype="float32", always_2d=True)[0].mean(axis=1)
    np.testing.assert_array_equal(audio.decode(str(path)).samples, expected)
