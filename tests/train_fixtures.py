"""Fixture methods for the training tests (names start with "test-", so the method contract skips them).

Importable as a plugin too: ``hashkit train --plugin train_fixtures`` with ``tests/`` on
``PYTHONPATH`` gives a subprocess the same methods.
"""

from __future__ import annotations

import math

import torch

from hashkit.methods import list_methods, register_method
from hashkit.methods.base import Method

__all__ = ["Linear", "Scripted", "Diverge"]


class Linear(Method):
    """Two linear maps trained with the pairwise likelihood (a test fixture, not a real method)."""

    defaults = {"epochs": 3, "batch_size": 16, "lr": 0.05}
    buffer_names = ("counter",)

    def build(self):
        self.img = torch.nn.Linear(self.image_dim, self.nbits)
        self.txt = torch.nn.Linear(self.text_dim, self.nbits)

    def setup(self, train):
        self.opt = torch.optim.SGD(self.parameters(), lr=self.config["lr"], momentum=0.9)
        self.counter = torch.zeros(1)
        self.seen_queries = 0

    def train_step(self, idx, epoch, train):
        from hashkit import losses

        f, g = torch.tanh(self.img(train.image_batch(idx))), torch.tanh(self.txt(train.text_batch(idx)))
        loss = losses.pairwise_likelihood(f, g, train.similarity(idx, idx), reduction="mean")
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.counter += 1
        return {"loss": loss.item()}

    def encode_images(self, x):
        return self.img(self.tensor(x))

    def encode_texts(self, y):
        return self.txt(self.tensor(y))


class Scripted(Method):
    """A fresh random projection every epoch, so validation MAP wanders up and down (a fixture)."""

    defaults = {"epochs": 8, "batch_size": 16, "lr": 0.1}
    buffer_names = ("p_img", "p_txt")

    def setup(self, train):
        self.p_img = torch.zeros(self.image_dim, self.nbits)
        self.p_txt = torch.zeros(self.text_dim, self.nbits)

    def begin_epoch(self, epoch, train):
        # Drawn from the method's checkpointed generator, so a resumed run draws the same.
        g = torch.Generator().manual_seed(int(self.rng.integers(2 ** 31)))
        self.p_img = torch.randn(self.image_dim, self.nbits, generator=g)
        self.p_txt = torch.randn(self.text_dim, self.nbits, generator=g)

    def train_step(self, batch, epoch, train):
        return {"loss": 1.0 / (epoch + 1)}

    def encode_images(self, x):
        return self.tensor(x) @ self.p_img

    def encode_texts(self, y):
        return self.tensor(y) @ self.p_txt


class Diverge(Linear):
    """Linear, whose 'quant' term turns NaN at epoch ``nan_epoch`` (1-based; a fixture)."""

    defaults = {"epochs": 4, "nan_epoch": 2}

    def train_step(self, idx, epoch, train):
        out = dict(super().train_step(idx, epoch, train))
        out["quant"] = math.nan if epoch + 1 >= self.config["nan_epoch"] else 0.25
        return out


# Imported both by the tests and, as a plugin, by their subprocesses: register once.
for _name, _cls in (("test-linear", Linear), ("test-scripted", Scripted), ("test-diverge", Diverge)):
    if _name not in list_methods():
        register_method(_name)(_cls)
