"""Trains the mood classifier shipped in server/earmark/tagging_data/mood_model.json.

A multinomial logistic regression (scikit-learn; stored as plain numbers, so the server needs
no scikit-learn) over ``TagModel.mood_features``: each sentence's similarity to the default
moods, VADER sentiment and a few surface cues (exclamations, laughter, urging, numbers),
trained on the mood labels of benchmarks/data/tags_dev.jsonl. It prints the leave-one-out
accuracy, the honest figure for passages it was not trained on.

    python benchmarks/train_mood.py [--c 0.3] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import _common  # noqa: F401 - puts server/ on the path
import numpy as np

from earmark.inference.tagger import MOOD_MODEL, TagModel

DATA = Path(__file__).resolve().parent / "data" / "tags_dev.jsonl"
_SPLIT = re.compile(r"(?<=[.!?])\s+")


def features(model: TagModel, passages: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for p in passages:
        sentences = [s for s in _SPLIT.split(p["text"]) if s.strip()]
        vectors = model.embed(sentences)
        xs.append(model.mood_features(p["text"], vectors))
        ys.append(p["mood"])
    return np.array(xs), np.array(ys)


def _pipeline(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def loo_accuracy(x: np.ndarray, y: np.ndarray, c: float) -> float:
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    predicted = cross_val_predict(_pipeline(c), x, y, cv=LeaveOneOut())
    return float((predicted == y).mean())


def fit(model: TagModel, x: np.ndarray, y: np.ndarray, c: float) -> dict:
    pipe = _pipeline(c).fit(x, y)
    scaler, clf = pipe[0], pipe[1]
    return {"classes": [str(k) for k in clf.classes_],
            "tone_moods": [t.name for t in model.default_moods],
            "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
            "coef": clf.coef_.tolist(), "intercept": clf.intercept_.tolist(),
            "trained_on": f"{DATA.name}: {len(y)} passages", "C": c}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--c", type=float, default=0.3, help="inverse regularisation strength")
    ap.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    args = ap.parse_args()
    passages = [json.loads(line) for line in DATA.read_text().splitlines() if line]
    passages = [p for p in passages if p.get("mood")]
    model = TagModel()
    x, y = features(model, passages)
    print(f"{len(y)} passages with a mood label; leave-one-out accuracy "
          f"{loo_accuracy(x, y, args.c):.3f} (C={args.c})")
    if not args.dry_run:
        MOOD_MODEL.write_text(json.dumps(fit(model, x, y, args.c), indent=1) + "\n")
        print(f"wrote {MOOD_MODEL}")


if __name__ == "__main__":
    main()
