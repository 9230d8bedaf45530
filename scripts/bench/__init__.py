"""Benchmarks, apart from the results pipeline: what ``make bench`` and a GPU session run.

- :mod:`scripts.bench.optimizers`: one RBO step against K SGD steps (interleaved pairs, ratio of minima), and the
  evaluations each projection needs to converge;
- :mod:`scripts.bench.trainer`: the trainer against a bare PyTorch loop, the input pipeline, VGG-9 epochs;
- :mod:`scripts.bench.gpu_check`: the one-shot GPU check, which writes ``results/gpu/throughput.json``.

They print timings and never assert them.
"""
