"Integration of the dialect notebooks (30-33): data -> classifier -> tiny translator -> preference pairs -> DPO, and the errors users meet."
import dataclasses

import pytest
import torch

from vlarl.config import ConfigError, DialectConfig, build_config
from vlarl.dialect.classifier import CharDialectClassifier, labelled_sentences
from vlarl.dialect.data import VARIETIES, DialectError, load_parallel, read_madar, read_parallel_tsv, split_parallel
from vlarl.dialect.pairs import (collect_responses, pair_counts, pair_requests, preference_dataset, preference_margin, train_dpo)
from vlarl.dialect.translator import make_tiny_lm, make_requests, sft, tokenizer_texts, with_msa_habit

DC = DialectConfig(hidden=64, layers=2, heads=2, vocab_size=800, samples_per_prompt=4, fix_tries=1, max_new_tokens=20,
                   dpo_trl={"num_train_epochs": 3, "learning_rate": 5e-3, "per_device_train_batch_size": 8})


@pytest.fixture(scope="module")
def setting():
    "Aligned sets, a classifier, and a toy translator with the MSA habit (weak on purpose: its answers mix varieties)."
    torch.manual_seed(0)
    rows = list(split_parallel(load_parallel(), 0.15, seed=0)["train"])
    by_id = {r["id"]: r for r in rows}
    clf = CharDialectClassifier().fit(*labelled_sentences(rows[::2])[:2])
    model, tok = make_tiny_lm(DC, tokenizer_texts(rows), seed=0)
    sft(model, tok, with_msa_habit(make_requests(rows[:120], per_set=6, seed=0), by_id, 0.5, 0.1), epochs=2, lr=4e-3, batch_size=32)
    return rows, clf, model, tok


@pytest.fixture(scope="module")
def pairs(setting):
    rows, clf, model, tok = setting
    torch.manual_seed(0)
    reqs = pair_requests(rows[:40], per_set=1, seed=3)
    responses = collect_responses(model, tok, clf, reqs, DC, progress=False)
    return reqs, responses, preference_dataset(reqs, responses, "dialect", DC)


def test_pairs_form_a_preference_dataset(pairs):
    reqs, responses, ds = pairs
    assert len(ds) > 0 and {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert all(isinstance(ds[0][k], str) and ds[0][k] for k in ("prompt", "chosen", "rejected"))
    assert all(c != r for c, r in zip(ds["chosen"], ds["rejected"]))
    assert all(c == d for c, d in zip(ds["chosen_label"], ds["dialect"])), "chosen is in the desired dialect"
    assert all(r in VARIETIES and r != d for r, d in zip(ds["rejected_label"], ds["dialect"])), "rejected is MSA or another dialect"
    assert set(ds["prompt"]) <= {q["prompt"] for q in reqs}
    counts = pair_counts(ds)
    assert sum(sum(c.values()) for c in counts["by_direction"].values()) == len(ds)
    q = preference_dataset(reqs, responses, "quality", dataclasses.replace(DC, quality_weight=0.5, quality_margin=0.1))
    assert all(a - b >= 0.1 - 1e-9 for a, b in zip(q["chosen_score"], q["rejected_score"]))


def test_short_dpo_raises_the_preference_margin(setting, pairs):
    rows, clf, model, tok = setting
    ds = pairs[2]
    before = preference_margin(model, tok, ds)
    aligned, log = train_dpo(model, tok, ds, DC)
    after = preference_margin(aligned, tok, ds)
    assert after["margin"] > before["margin"] + 1.0, (before, after)
    assert after["accuracy"] > before["accuracy"] or after["accuracy"] == 1.0
    with aligned.disable_adapter():
        assert abs(preference_margin(aligned, tok, ds)["margin"] - before["margin"]) < 1e-3, "the reference is the model before DPO"
    assert any("rewards/margins" in h for h in log)


def test_unknown_dialect_code_is_a_clear_error(setting):
    rows = setting[0]
    with pytest.raises(DialectError, match="unknown dialect code 'lev'.*valid codes: egy, mor, pal, sau, syr"):
        pair_requests(rows[:2], ["egy", "lev"])
    with pytest.raises(ConfigError, match="unknown dialect code 'xyz'"):
        build_config("tiny", overrides=["dialect.dialects=[egy, xyz]"])


def test_tsv_missing_columns_is_a_clear_error(tmp_path):
    p = tmp_path / "corpus.tsv"
    p.write_text("id\teng\tmsa\tegy\n1\tI want\tأريد\tعايز\n", encoding="utf-8")
    with pytest.raises(DialectError, match=r"lacks the required columns \['mor', 'pal', 'sau', 'syr'\]"):
        read_parallel_tsv(p)
    assert len(read_parallel_tsv(p, dialects=["egy"])) == 1
    m = tmp_path / "MADAR.corpus.Cairo.tsv"
    m.write_text("sentID.BTEC\tlang\tsent\n1\tCAI\tعايز\n", encoding="utf-8")
    with pytest.raises(DialectError, match=r"lacks the required columns \['split'\]"):
        read_madar(m)


def test_empty_preference_set_is_a_clear_error(setting, pairs):
    rows, clf, model, tok = setting
    reqs, responses, ds = pairs
    msa_only = [[r for r in rs if r["label"] != q["dialect"]] for q, rs in zip(reqs, responses)]
    with pytest.raises(ValueError, match="empty preference set"):
        preference_dataset(reqs, msa_only, "dialect", DC)
    with pytest.raises(ValueError, match="empty preference set.*samples_per_prompt"):
        train_dpo(model, tok, ds.select([]), DC)
