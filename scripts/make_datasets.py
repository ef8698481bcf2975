#!/usr/bin/python3
"""Writes the real data sets the tests use, from Debian's python3-sklearn.

    /usr/bin/python3 scripts/make_datasets.py   # rewrites tests/data/*.csv

digits.csv: 1797 rows, 64 pixel columns (0..16) and a `digit` label column.
iris.csv:   150 rows, 4 measurement columns and a `species` class-name column.
The files are committed; this script documents where they came from.
"""
import csv
import os

from sklearn.datasets import load_digits, load_iris

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def write(name, header, rows):
    with open(os.path.join(OUT, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main():
    os.makedirs(OUT, exist_ok=True)
    d = load_digits()
    write("digits.csv", [f"p{i}" for i in range(64)] + ["digit"],
          [[int(v) for v in x] + [int(y)] for x, y in zip(d.data, d.target)])
    iris = load_iris()
    cols = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    write("iris.csv", cols,
          [[f"{v:g}" for v in x] + [iris.target_names[y]] for x, y in zip(iris.data, iris.target)])


if __name__ == "__main__":
    main()
