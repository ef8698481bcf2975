#!/usr/bin/python3
"""eval_reference.py - checks an answer of POST /v1/models/{name}/evaluate
against scikit-learn's metrics on the same predictions.

Run by tests/server_eval.c with one argument, a JSON file:
  {"evaluate": <the evaluate answer>,
   "outputs":  <the predict answer's outputs for the same rows and version>,
   "classes":  <the predict answer's class indices> (classification),
   "y_true":   [class names, as the data gave them]   (classification),
   "targets":  [[...], ...]                           (regression)}
Every number of the answer is compared (relative 1e-6, absolute 1e-9);
prints each mismatch and exits 1 when there is one.
"""
import json
import math
import sys

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, log_loss, mean_absolute_error,
                             mean_squared_error, precision_recall_fscore_support, r2_score)

FLT_MIN = float(np.finfo(np.float32).tiny)
EPS = float(np.finfo(np.float32).eps)

bad = []
checked = 0


def near(what, got, want):
    global checked
    checked += 1
    if got is None or not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
        bad.append(f"{what}: server {got!r}, scikit-learn {want!r}")


def same(what, got, want):
    global checked
    checked += 1
    if got != want:
        bad.append(f"{what}: server {got!r}, expected {want!r}")


def f32(rows):
    # the server's floats, exactly: JSON carries them as %.9g
    return np.array(rows, dtype=np.float32).astype(np.float64)


def classification(ev, doc):
    names = ev["confusion_matrix"]["classes"]
    k = len(names)
    index = {n: i for i, n in enumerate(names)}
    y = np.array([index[str(n)] for n in doc["y_true"]])
    P = f32(doc["outputs"])
    pred = np.array(doc["classes"])
    want_pred = (P[:, 0] >= 0.5).astype(int) if P.shape[1] == 1 else P.argmax(axis=1)
    same("predicted classes", list(pred), list(want_pred))
    same("rows", ev["rows"], len(y))
    labels = list(range(k))
    near("accuracy", ev["accuracy"], accuracy_score(y, pred))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for c in range(k):
        pc = ev["per_class"][c]
        same(f"per_class[{c}].class", pc["class"], names[c])
        near(f"per_class[{c}].precision", pc["precision"], p[c])
        near(f"per_class[{c}].recall", pc["recall"], r[c])
        near(f"per_class[{c}].f1", pc["f1"], f[c])
        same(f"per_class[{c}].support", pc["support"], int(s[c]))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        near(f"{avg}.precision", ev[avg]["precision"], p)
        near(f"{avg}.recall", ev[avg]["recall"], r)
        near(f"{avg}.f1", ev[avg]["f1"], f)
    same("confusion_matrix", ev["confusion_matrix"]["matrix"],
         confusion_matrix(y, pred, labels=labels).tolist())
    probs = P[:, 0] if P.shape[1] == 1 else P
    near("log_loss", ev["log_loss"], log_loss(y, probs, labels=labels, eps=EPS))
    full = np.column_stack([1 - P[:, 0], P[:, 0]]) if P.shape[1] == 1 else P
    p_true = full[np.arange(len(y)), y]
    near("loss", ev["loss"], float(np.mean(-np.log(np.maximum(p_true, FLT_MIN)))))


def regression(ev, doc):
    T, P = f32(doc["targets"]), f32(doc["outputs"])
    same("rows", ev["rows"], len(T))
    mse = mean_squared_error(T, P, multioutput="raw_values")
    mae = mean_absolute_error(T, P, multioutput="raw_values")
    r2 = r2_score(T, P, multioutput="raw_values")
    for j in range(T.shape[1]):
        o = ev["per_output"][j]
        near(f"per_output[{j}].mse", o["mse"], mse[j])
        near(f"per_output[{j}].rmse", o["rmse"], math.sqrt(mse[j]))
        near(f"per_output[{j}].mae", o["mae"], mae[j])
        near(f"per_output[{j}].r2", o["r2"], r2[j])
    near("mse", ev["mse"], mean_squared_error(T, P))
    near("rmse", ev["rmse"], math.sqrt(mean_squared_error(T, P)))
    near("mae", ev["mae"], mean_absolute_error(T, P))
    near("r2", ev["r2"], r2_score(T, P))
    near("loss", ev["loss"], mean_squared_error(T, P))


def main():
    with open(sys.argv[1]) as fh:
        doc = json.load(fh)
    ev = doc["evaluate"]
    if ev["task"] == "classification":
        classification(ev, doc)
    else:
        regression(ev, doc)
    for b in bad:
        print(b)
    print(f"{checked} numbers compared, {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
