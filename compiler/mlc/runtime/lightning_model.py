"""Lightning candidates as sklearn estimators, so every registered model is the same kind of object:
``Pipeline([("features", ColumnTransformer), ("model", <estimator>)])``.

Training uses a Lightning Trainer (CPU, seeded, deterministic); what is kept afterwards is only the trained
``torch.nn.Module``, so a pickled model unpickles and predicts with torch alone, without a Trainer.

A user module (``estimator: package.module:MyModule``) is a LightningModule built as
``MyModule(input_dim=<n features>, **params)``; its ``training_step`` receives ``(x, y)`` float32 batches
(y is 0/1 for classification) and ``forward(x)`` returns one logit (classification) or the prediction
(regression) per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

LIGHTNING_HINT = "pip install 'mlc[lightning]'  (installs torch and pytorch-lightning)"


def _require_lightning() -> tuple[Any, Any]:
    try:
        import pytorch_lightning as pl
        import torch
    except ImportError as e:
        from mlc.errors import RunError

        raise RunError(f"a Lightning candidate needs torch and pytorch-lightning, which are not installed "
                       f"({e.name})\nhint: {LIGHTNING_HINT}") from e
    return torch, pl  # what Lightning logs ("GPU available: ...") goes through the step's capture (chatter.py)


def _builtin_module(pl: Any, torch: Any, net: Any, loss: str, lr: float, weight_decay: float) -> Any:
    class MLPModule(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.loss_fn = torch.nn.BCEWithLogitsLoss() if loss == "bce" else torch.nn.MSELoss()

        def forward(self, x: Any) -> Any:
            return self.net(x).squeeze(-1)

        def training_step(self, batch: Any, _idx: int) -> Any:
            x, y = batch
            return self.loss_fn(self(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)

    return MLPModule()


class _TabularMLP(BaseEstimator):
    _loss = "mse"

    def __init__(self, hidden_sizes: Any = (64, 32), epochs: int = 20, batch_size: int = 256,
                 learning_rate: float = 1e-3, weight_decay: float = 0.0, dropout: float = 0.0,
                 random_state: int = 42, module: str | None = None, module_params: dict | None = None) -> None:
        self.hidden_sizes = hidden_sizes
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.random_state = random_state
        self.module = module
        self.module_params = module_params

    def _net(self, torch: Any, n_in: int) -> Any:
        layers: list[Any] = []
        for h in self.hidden_sizes:
            layers += [torch.nn.Linear(n_in, int(h)), torch.nn.ReLU()]
            if self.dropout:
                layers.append(torch.nn.Dropout(self.dropout))
            n_in = int(h)
        layers.append(torch.nn.Linear(n_in, 1))
        return torch.nn.Sequential(*layers)

    def fit(self, X: Any, y: Any) -> _TabularMLP:
        torch, pl = _require_lightning()
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        self._prepare_y(y)
        pl.seed_everything(self.random_state, workers=True, verbose=False)
        if self.module:
            from mlc.runtime.features import import_path

            lm = import_path(self.module)(input_dim=X.shape[1], **(self.module_params or {}))
        else:
            lm = _builtin_module(pl, torch, self._net(torch, X.shape[1]), self._loss, self.learning_rate,
                                 self.weight_decay)
        ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
        loader = torch.utils.data.DataLoader(ds, batch_size=int(self.batch_size), shuffle=True, num_workers=0,
                                             generator=torch.Generator().manual_seed(self.random_state))
        trainer = pl.Trainer(max_epochs=int(self.epochs), accelerator="cpu", devices=1, deterministic=True,
                             enable_progress_bar=False, logger=False, enable_checkpointing=False,
                             enable_model_summary=False, num_sanity_val_steps=0)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Lightning's own, not the user's business
            warnings.filterwarnings("ignore", message=".*(LeafSpec|num_workers|does not have many workers).*")
            trainer.fit(lm, loader)
        lm.eval()
        # Keep the bare torch module only: it pickles without a Trainer (or Lightning) attached.
        self.net_ = lm.net if not self.module else lm
        if self.module:
            lm._trainer = None
        self.n_features_in_ = X.shape[1]
        return self

    def _prepare_y(self, y: np.ndarray) -> None:
        pass

    def _raw(self, X: Any) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.asarray(X, dtype=np.float32))
        with torch.no_grad():
            out = self.net_(x)
        return out.reshape(len(x), -1)[:, 0].double().numpy()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        net = state.get("net_")
        if net is not None and hasattr(net, "_trainer"):
            net._trainer = None
        return state


class TabularMLPClassifier(ClassifierMixin, _TabularMLP):
    """Binary classifier; ``predict_proba`` columns follow ``classes_`` = [0, 1] like sklearn's."""

    _loss = "bce"

    def _prepare_y(self, y: np.ndarray) -> None:
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: Any) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self._raw(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)


class TabularMLPRegressor(RegressorMixin, _TabularMLP):
    def predict(self, X: Any) -> np.ndarray:
        return self._raw(X)
