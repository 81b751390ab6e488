"""LexicalFeatures computes the TF-IDF blocks itself; its rows must be scikit-learn's."""

from __future__ import annotations

import pickle

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from crowddesk.nlu.lexical import LexicalFeatures

TRAINING = [
    "my card has not arrived",
    "where is my new card",
    "reset my PIN",
    "top up by bank transfer",
    "error E-404 when paying",
    "Café card declined abroad",
    "card card card blocked",
]
QUERIES = [
    "Where is my CARD?? card card",
    "error e-404 again",
    "",
    "!!!",
    "completely unseen words",
    "café déclinée",
    "top up top up",
]


def scikit_learn_rows(texts: list[str]) -> sparse.csr_matrix:
    blocks = [
        TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True, dtype=np.float32)
        .fit(TRAINING)
        .transform(texts)
        / np.sqrt(2)
        for analyzer, ngrams in (("word", (1, 2)), ("char_wb", (2, 5)))
    ]
    return sparse.hstack(blocks, format="csr")


def test_rows_are_scikit_learns_tfidf_blocks_side_by_side() -> None:
    features = LexicalFeatures.fit(TRAINING)

    rows = features.transform(QUERIES)

    assert rows.shape == (len(QUERIES), features.dimension)
    np.testing.assert_allclose(rows.toarray(), scikit_learn_rows(QUERIES).toarray(), atol=1e-6)


def test_rows_are_the_same_after_saving_or_pickling() -> None:
    features = LexicalFeatures.fit(TRAINING)
    restored = LexicalFeatures.from_state(features.vocabularies(), features.idf_arrays())
    pickled = pickle.loads(pickle.dumps(features))  # as joblib returns features fitted in a worker

    for copy in (restored, pickled):
        np.testing.assert_allclose(copy.transform(QUERIES).toarray(), features.transform(QUERIES).toarray(), atol=1e-7)
