"""A trained optimizer in the store: network, feature spec, normalization, predictor references.

The payload is ``torch.save`` of plain tensors and JSON strings (loaded with
``weights_only=True``); the artifact kind is :data:`ARTIFACT_KIND`. The performance networks are
*referenced* by their predictor artifact names (they are large and shared); :func:`save_optimizer`
can write them in the same transactional run, so an optimizer never points at predictors that
were not stored. Loading rebuilds the :class:`~fleetnas.l2o.objective.PredictedObjective` with
the stored accuracy scale and reference designs, so scores match those at training time.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fleetnas.errors import InputError, UnknownNameError
from fleetnas.l2o.features import FeatureSpec
from fleetnas.l2o.generate import L2OOptimizer
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.predict.base import dump_payload, load_payload
from fleetnas.search.objectives import Scale
from fleetnas.spaces import get_space

if TYPE_CHECKING:
    from fleetnas.predict.base import Persistable
    from fleetnas.store import Store

ARTIFACT_KIND = "l2o-optimizer"
FORMAT = "fleetnas-l2o/1"
_ROLES = ("accuracy", "latency", "energy")


def to_bytes(optimizer: L2OOptimizer, predictor_names: dict[str, str] | None = None) -> bytes:
    """The optimizer as bytes; ``predictor_names`` maps ``accuracy``/``latency``/``energy`` to
    the predictor artifact names its objective is rebuilt from."""
    net = optimizer.net
    obj = optimizer.objective
    objective: dict[str, Any] | None = None
    if obj is not None:
        names = dict(predictor_names or {})
        objective = {
            "predictors": {r: names.get(r) for r in _ROLES},
            "q": obj.q,
            "acc_scale": obj.acc_scale.to_dict(),
        }
    blob = {
        "format": FORMAT,
        "space": net.space.name,
        "params": json.dumps(net.params()),
        "spec": json.dumps(net.spec.to_dict()),
        "state": net.state(),
        "objective": json.dumps(objective),
        "reference": None if obj is None else torch.as_tensor(obj.reference),
        "info": json.dumps(net.info, default=str),
        "probes": None if optimizer.probes is None else torch.as_tensor(optimizer.probes),
        "name": optimizer.name,
    }
    return dump_payload(blob)


def from_bytes(
    data: bytes, predictors: dict[str, Persistable] | None = None, space: Any = None
) -> L2OOptimizer:
    """Rebuild an optimizer; ``predictors`` (by role) restore its objective."""
    blob = load_payload(data, "optimizer", FORMAT)
    sp = space if space is not None else get_space(blob["space"])
    spec = FeatureSpec.from_dict(json.loads(blob["spec"]))
    params = json.loads(blob["params"])
    net = OptimizerNet(sp, spec, params["hidden"], params["n_members"], params["seed"])
    net.load_state(blob["state"])
    net.info = json.loads(blob["info"])
    objective = None
    meta = json.loads(blob["objective"])
    preds = predictors or {}
    if meta is not None and preds.get("accuracy") is not None and preds.get("latency") is not None:
        ref = blob["reference"]
        objective = PredictedObjective(
            sp,
            preds["accuracy"],  # type: ignore[arg-type]
            preds["latency"],  # type: ignore[arg-type]
            preds.get("energy"),  # type: ignore[arg-type]
            reference=None if ref is None else np.asarray(ref, dtype=np.int64),
            q=float(meta["q"]),
            acc_scale=Scale(**meta["acc_scale"]),
        )
    probes = blob.get("probes")
    return L2OOptimizer(
        net,
        objective,
        name=str(blob.get("name", "")),
        probes=None if probes is None else np.asarray(probes, dtype=np.int64),
    )


def predictor_names(data: bytes) -> dict[str, str | None]:
    """The predictor artifact names an optimizer payload refers to (by role)."""
    blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    meta = json.loads(blob["objective"])
    return {} if meta is None else dict(meta["predictors"])


def save_optimizer(
    store: Store,
    name: str,
    optimizer: L2OOptimizer,
    predictor_names: dict[str, str] | None = None,
    save_predictors: bool | tuple[str, ...] = True,
    extra_meta: dict[str, Any] | None = None,
) -> str:
    """Store ``optimizer`` as artifact ``name`` (kind :data:`ARTIFACT_KIND`) and, with
    ``save_predictors`` (``True`` or the roles to save, e.g. ``("latency",)``), its objective's
    predictors under ``predictor_names``, all in one run. Returns the optimizer's SHA-256."""
    from fleetnas.predict.base import ARTIFACT_KIND as PRED_KIND
    from fleetnas.store import Artifact

    if not name or not isinstance(name, str):
        raise InputError(f"optimizer name must be a non-empty string, got {name!r}")
    names = dict(predictor_names or {})
    obj = optimizer.objective
    pending = []
    roles = _ROLES if save_predictors is True else tuple(save_predictors or ())
    if obj is not None:
        for role in roles:
            p = getattr(obj, role)
            if p is None:
                continue
            if not names.get(role):
                raise InputError(f"give a predictor artifact name for the {role} predictor")
            pending.append(Artifact(names[role], PRED_KIND, p.to_bytes(), meta=p.artifact_meta()))
    payload = to_bytes(optimizer, names)
    meta = {
        "format": FORMAT,
        "space": optimizer.space.name,
        "features": optimizer.net.spec.mode,
        "n_members": optimizer.net.n_members,
        "predictors": names,
        "method": optimizer.net.info.get("method"),
        **(extra_meta or {}),
    }
    with store.run("l2o-train", {"name": name, **meta}) as run:
        for art in pending:
            run.save_artifact(art)
        return run.save_artifact(Artifact(name, ARTIFACT_KIND, payload, meta=meta))


def load_optimizer(store: Store, name: str, with_objective: bool = True) -> L2OOptimizer:
    """The newest optimizer artifact ``name``; with ``with_objective`` its predictors are
    loaded from the store too (missing ones raise :class:`UnknownNameError`)."""
    from fleetnas.predict import load_predictor

    try:
        art = store.load_artifact(name, ARTIFACT_KIND)
    except UnknownNameError:
        names = [a.name for a in store.list_artifacts(ARTIFACT_KIND)]
        from fleetnas.errors import unknown

        raise unknown("optimizer", name, names) from None
    preds: dict[str, Any] = {}
    if with_objective:
        space = get_space(art.meta["space"]) if "space" in (art.meta or {}) else None
        for role, pname in predictor_names(art.payload).items():
            if pname:
                preds[role] = load_predictor(store, pname, space)
    opt = from_bytes(art.payload, preds)
    opt.name = name
    return opt


__all__ = [
    "ARTIFACT_KIND",
    "FORMAT",
    "from_bytes",
    "load_optimizer",
    "predictor_names",
    "save_optimizer",
    "to_bytes",
]
