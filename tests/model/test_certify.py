"""Per-kind certification (Learn-then-Test, exact Clopper–Pearson) against known cases."""

from __future__ import annotations

import math

import pytest

from claims_api.inference.metadata import KindCertificate
from claims_api.retraining.bounds import error_upper_bound, precision_lower_bound
from training.certify import Labelled, certificates, certify, certify_kind


def _approvals(kind: str, correct: int, wrong: int, score: float = 0.99) -> list[Labelled]:
    rotten = [Labelled(kind, score, True, f"{kind}-r{i}") for i in range(correct)]
    fresh = [Labelled(kind, score, False, f"{kind}-f{i}") for i in range(wrong)]
    return rotten + fresh


def test_zero_errors_bound_is_the_closed_form():
    # with no error the bound solves (1 - p)^n = delta
    for n in (1, 10, 299, 1000):
        assert error_upper_bound(0, n, 0.05) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)


def test_one_error_bound_solves_the_binomial_cdf():
    n, p = 473, error_upper_bound(1, 473, 0.05)
    cdf = (1 - p) ** n + n * p * (1 - p) ** (n - 1)
    assert cdf == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize(
    ("correct", "wrong", "certified"),
    [(299, 0, True), (298, 0, False), (472, 1, True), (471, 1, False)],
)
def test_known_minimum_sample_sizes(correct, wrong, certified):
    """0 errors need 299 approvals at 99%/95%; 1 error needs 473 approvals in all."""
    report = certify_kind("apple", _approvals("apple", correct, wrong), thresholds=(0.9,))
    assert (report.certificate is not None) is certified
    n = correct + wrong
    assert report.steps[0].n == n and report.steps[0].errors == wrong
    assert (precision_lower_bound(n, wrong, 0.05) >= 0.99) is certified


def test_certificate_records_what_it_rests_on():
    report = certify_kind("apple", _approvals("apple", 299, 0), thresholds=(0.9,))
    cert = report.certificate
    assert isinstance(cert, KindCertificate)
    assert (cert.kind, cert.threshold, cert.n, cert.errors) == ("apple", 0.9, 299, 0)
    assert cert.delta == 0.05 and cert.target_precision == 0.99
    assert cert.precision_lower_bound == pytest.approx(0.05 ** (1 / 299), abs=1e-6)
    assert len(cert.data_fingerprint) == 64


def test_least_strict_passing_threshold_is_certified():
    # 400 clean rotten at 0.99; 400 more rotten at 0.8: 0.8 passes with n=800 too
    samples = _approvals("pear", 400, 0, 0.99) + _approvals("pear", 400, 0, 0.8)
    samples = [Labelled(s.kind, s.p_rotten, s.rotten, f"{i}") for i, s in enumerate(samples)]
    report = certify_kind("pear", samples, thresholds=(0.95, 0.9, 0.8, 0.7))
    assert report.certificate is not None and report.certificate.threshold == 0.7
    assert [s.n for s in report.steps] == [400, 400, 800, 800]


def test_fixed_sequence_stops_at_the_first_failure():
    """0.9 passes; 0.8 fails (many fresh photos between 0.8 and 0.9); 0.5 would pass again
    (many rotten ones below 0.8 dilute the errors) but is never reached."""
    samples = (
        _approvals("fig", 400, 0, 0.95)
        + [Labelled("fig", 0.85, False, f"f{i}") for i in range(10)]
        + [Labelled("fig", 0.6, True, f"r{i}") for i in range(5000)]
    )
    looser_alone = certify_kind("fig", samples, thresholds=(0.5,))
    assert looser_alone.certificate is not None  # would pass if tested on its own
    report = certify_kind("fig", samples, thresholds=(0.9, 0.8, 0.5))
    assert [s.threshold for s in report.steps] == [0.9, 0.8]
    assert [s.passed for s in report.steps] == [True, False]
    assert report.certificate is not None and report.certificate.threshold == 0.9


def test_strict_threshold_with_too_few_approvals_certifies_nothing():
    samples = _approvals("guava", 5, 0, 0.999) + _approvals("guava", 1000, 0, 0.9)
    report = certify_kind("guava", samples, thresholds=(0.99, 0.9))
    assert report.certificate is None
    assert len(report.steps) == 1 and "n=5" in report.reason


def test_gate_failures_are_not_approvals():
    samples = [*_approvals("kiwi", 299, 0), Labelled("kiwi", 0.99, False, "ood", False)]
    assert certify_kind("kiwi", samples, thresholds=(0.9,)).certificate is not None


def test_certify_reports_each_kind_and_keeps_certified_ones():
    reports = certify(_approvals("apple", 299, 0) + _approvals("grape", 3, 0), thresholds=(0.9,))
    assert set(reports) == {"apple", "grape"}
    certs = certificates(reports)
    assert set(certs) == {"apple"}
    assert reports["grape"].certificate is None


def test_thresholds_must_go_from_strict_to_loose():
    with pytest.raises(ValueError, match="strict"):
        certify_kind("apple", [], thresholds=(0.5, 0.9))


def test_a_certificate_below_its_target_is_invalid():
    with pytest.raises(ValueError):
        KindCertificate(
            kind="apple",
            threshold=0.9,
            n=10,
            errors=0,
            precision_lower_bound=0.74,
            delta=0.05,
            target_precision=0.99,
        )


def test_bounds_are_monotone_in_errors():
    bounds = [error_upper_bound(k, 500, 0.05) for k in range(5)]
    assert bounds == sorted(bounds) and not any(math.isnan(b) for b in bounds)


def test_the_command_certifies_a_model_from_a_manifest(tmp_path, tiny_model_path):
    """Held-out labelled photos → per-kind certificates in a copy of the model: apple has
    enough clean approvals at 90%/95%, banana (5 photos) stays off."""
    import csv

    from claims_api.inference.model import Classifier
    from data.synthetic import make_fruit
    from training.certify import main

    root = tmp_path / "held-out"
    (root / "images").mkdir(parents=True)
    rows = []
    plan = [("apple", True, 40), ("apple", False, 10), ("banana", True, 5)]
    for produce, rotten, count in plan:
        for seed in range(count):
            name = f"images/{produce}-{rotten}-{seed}.jpg"
            make_fruit(produce, rotten=rotten, seed=seed).save(root / name, quality=90)
            condition = "rotten" if rotten else "fresh"
            rows.append([name, produce, condition, "test", "synthetic", "", 0, 0])
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "image",
                "produce",
                "condition",
                "split",
                "source_repo",
                "source_path",
                "width",
                "height",
            ]
        )
        writer.writerows(rows)
    out = tmp_path / "certified.onnx"

    reports = main(
        [
            str(tiny_model_path),
            "--manifest",
            str(root),
            "--thresholds",
            "0.95",
            "0.5",
            "--target",
            "0.9",
            "--out",
            str(out),
        ]
    )

    assert reports["apple"].certificate is not None
    assert reports["apple"].certificate.errors == 0 and reports["apple"].certificate.n >= 29
    assert reports["banana"].certificate is None
    certified = Classifier(out).metadata
    assert set(certified.certificates) == {"apple"}
    assert certified.certificates["apple"] == reports["apple"].certificate
    assert Classifier(tiny_model_path).metadata.certificates == {}
