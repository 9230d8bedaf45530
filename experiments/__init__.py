"""The one trainer and what it runs: ``python -m experiments.train optimizer=rbo dataset=cifar10 model=vgg9``.

``data`` (device-resident datasets), ``models`` (the paper's models), ``registry`` (conf/optimizer/, read without
torch), ``optim`` (optimizers built, checked and driven by their protocol),
``trainer`` (the loop, cost accounting, resume), ``records`` (run records), ``config`` (Hydra schemas),
``controls`` (issue 7's effective-lr control), ``wandb_logger``.
"""
