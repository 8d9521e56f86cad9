"""Published reference data the statistics are tested against (each with its source)."""

from __future__ import annotations

import numpy as np

NAN = np.nan

# Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x
# 12 units with missing values (also R irrCAC dataset cac.raw4raters).
KRIPP = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]

# Fleiss (1971) Psychol Bull 76:378-382, Table 1: 30 patients x 6 psychiatrists, 5 diagnoses
# (R irr dataset `diagnoses`; 1=Depression 2=Personality disorder 3=Schizophrenia 4=Neurosis
# 5=Other).
DIAGNOSES = """444444 222555 233335 555555 222444 113333 333355 113334 114444 555555
144444 124444 222333 144444 224445 333335 111455 111112 224444 133555
555555 244444 224555 114444 144445 222224 111155 224444 133333 555555"""

# R irr dataset `anxiety` (20 subjects x 3 raters), as printed in statsmodels'
# stats/tests/test_inter_rater.py.
ANXIETY = np.array([
    3, 3, 3, 4, 5, 5, 2, 3, 5, 2, 2, 6, 1, 5, 2, 2, 1, 2, 4, 3,
    3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4,
    2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2,
]).reshape(20, 3, order="F")

# SAS PROC FREQ example printout reproduced in statsmodels' test_inter_rater.py (table10).
SAS_TABLE = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]

# R irrCAC dataset cont3x3abstractors (irrCAC README / "overview" vignette).
ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]

# R irrCAC dataset distrib.6raters (irrCAC "overview" vignette).
DISTRIB6 = [[0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
            [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
            [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1]]


def diagnoses() -> np.ndarray:
    return np.array([[int(c) for c in row] for row in DIAGNOSES.split()])


def diagnoses_counts() -> np.ndarray:
    d = diagnoses()
    return np.stack([(d == c).sum(axis=1) for c in range(1, 6)], axis=1)
