"""What a SavedModel signature takes and returns, read without loading the model.

Everything here reads ``saved_model.pb`` only (no variables, no session), so the
launching process checks a request against the model before any data moves:

* :func:`read_signature` names the signature's inputs and outputs with their
  dtypes and shapes, its kind (predict, classify or regress, from the
  signature's ``method_name``) and, when the model parses tf.Examples itself,
  the features its ``ParseExample`` ops read;
* :func:`plan_inputs` decides how Arrow columns feed the signature (serialized
  tf.Examples or one dense tensor per input) and raises
  :class:`~conveyor.beam_utils.errors.InputError` naming the first input or
  feature that is missing or of the wrong type.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import pyarrow as pa

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError

PREDICT = "predict"
CLASSIFY = "classify"
REGRESS = "regress"

_METHOD_KINDS = {
    "tensorflow/serving/predict": PREDICT,
    "tensorflow/serving/classify": CLASSIFY,
    "tensorflow/serving/regress": REGRESS,
}

EXAMPLES = "examples"
TENSORS = "tensors"
INPUT_MODES = (EXAMPLES, TENSORS)

_PARSE_OPS = ("ParseExample", "ParseExampleV2")


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature.

    ``dtype`` is a numpy-style name (``float32``, ``int64``, ``string``, ...);
    ``shape`` has ``None`` for unknown dimensions, and is ``None`` itself when
    the rank is unknown.
    """

    key: str
    dtype: str
    shape: tuple | None


@dataclasses.dataclass(frozen=True)
class ParsedFeature:
    """A feature that a ``ParseExample`` op inside the model reads."""

    name: str
    dtype: str  # float32, int64 or string
    required: bool  # a dense feature without a default value


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    """A signature of a SavedModel, as its ``saved_model.pb`` declares it."""

    model_path: str
    name: str
    method_name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]
    # Features read by the model's ParseExample ops; None if it has none (or
    # their keys are not constants we can read).
    parsed_features: Mapping[str, ParsedFeature] | None

    @property
    def kind(self) -> str:
        """predict, classify or regress; an unknown method name counts as predict."""
        return _METHOD_KINDS.get(self.method_name, PREDICT)


@dataclasses.dataclass(frozen=True)
class InputPlan:
    """How a batch of Arrow columns becomes the signature's arguments.

    In ``examples`` mode the rows are encoded as serialized tf.Examples and fed
    to the single input ``examples_key``. In ``tensors`` mode each input in
    ``tensors`` is filled from the column of the same name, ``values_per_row``
    values a row, reshaped to the input's shape.
    """

    mode: str
    examples_key: str | None = None
    tensors: tuple = ()  # of TensorInfo


def _dtype_name(tf_enum: int) -> str:
    import tensorflow as tf

    d = tf.dtypes.as_dtype(tf_enum)
    return "string" if d == tf.string else d.name


def _shape(proto) -> tuple | None:
    if proto.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in proto.dim)


def _tensor_infos(infos) -> dict[str, TensorInfo]:
    return {
        k: TensorInfo(k, _dtype_name(v.dtype), _shape(v.tensor_shape))
        for k, v in sorted(infos.items())
    }


def _read_saved_model_proto(model_path: str):
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    if not tf.io.gfile.exists(model_path):
        raise InputError(f"model path {model_path!r} does not exist")
    if not tf.io.gfile.isdir(model_path):
        raise InputError(
            f"model path {model_path!r} is not a directory (expected a SavedModel directory)"
        )
    pb = os.path.join(model_path, "saved_model.pb")
    pbtxt = os.path.join(model_path, "saved_model.pbtxt")
    proto = saved_model_pb2.SavedModel()
    try:
        if tf.io.gfile.exists(pb):
            with tf.io.gfile.GFile(pb, "rb") as f:
                proto.ParseFromString(f.read())
        elif tf.io.gfile.exists(pbtxt):
            with tf.io.gfile.GFile(pbtxt, "r") as f:
                text_format.Parse(f.read(), proto)
        else:
            raise InputError(
                f"model path {model_path!r} is not a SavedModel: it has no saved_model.pb"
            )
    except InputError:
        raise
    except Exception as e:  # a corrupt or foreign file
        raise InputError(f"{pb}: cannot be read as a SavedModel ({e})") from e
    return proto


def _serving_meta_graph(proto, model_path: str):
    for mg in proto.meta_graphs:
        if "serve" in mg.meta_info_def.tags:
            return mg
    if len(proto.meta_graphs) == 1:
        return proto.meta_graphs[0]
    raise InputError(f"SavedModel {model_path!r} has no meta graph tagged 'serve'")


def read_signature(model_path: str, signature: str = "serving_default") -> SignatureInfo:
    """Reads one signature of the SavedModel at ``model_path``.

    Raises:
      InputError: the path is missing or not a SavedModel, or has no such
        signature (the message lists the ones it has).
    """
    proto = _read_saved_model_proto(model_path)
    mg = _serving_meta_graph(proto, model_path)
    sigs = {k: v for k, v in mg.signature_def.items() if not k.startswith("__")}
    if signature not in sigs:
        have = ", ".join(sorted(sigs)) or "none"
        raise InputError(
            f"SavedModel {model_path!r} has no signature {signature!r} (it has: {have})"
        )
    sig = sigs[signature]
    return SignatureInfo(
        model_path=model_path,
        name=signature,
        method_name=sig.method_name,
        inputs=_tensor_infos(sig.inputs),
        outputs=_tensor_infos(sig.outputs),
        parsed_features=_parsed_features(mg, sig),
    )


# --- the features a model parses -------------------------------------------------


def _node_name(ref: str) -> str:
    return ref.lstrip("^").split(":", 1)[0]


def _called_functions(node) -> list[str]:
    names = []
    for attr in node.attr.values():
        kind = attr.WhichOneof("value")
        if kind == "func":
            names.append(attr.func.name)
        elif kind == "list":
            names.extend(f.name for f in attr.list.func)
    return names


def _const_strings(nodes: Mapping, ref: str) -> list[str] | None:
    import tensorflow as tf

    node = nodes.get(_node_name(ref))
    if node is None or node.op != "Const":
        return None
    value = tf.make_ndarray(node.attr["value"].tensor)
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value.reshape(-1)]


def _const_is_empty(nodes: Mapping, ref: str) -> bool | None:
    node = nodes.get(_node_name(ref))
    if node is None or node.op != "Const":
        return None
    shape = node.attr["value"].tensor.tensor_shape
    return any(d.size == 0 for d in shape.dim)


def _features_of_parse_op(node, nodes: Mapping) -> dict[str, ParsedFeature] | None:
    """The features one ParseExample(V2) op reads, or None if its keys are not constants."""
    inputs = [i for i in node.input if not i.startswith("^")]
    tdense = [_dtype_name(t) for t in node.attr["Tdense"].list.type]
    sparse_types = [_dtype_name(t) for t in node.attr["sparse_types"].list.type]
    if node.op == "ParseExampleV2":
        sparse_keys = _const_strings(nodes, inputs[2])
        dense_keys = _const_strings(nodes, inputs[3])
        ragged_keys = _const_strings(nodes, inputs[4])
        ragged_types = [_dtype_name(t) for t in node.attr["ragged_value_types"].list.type]
        defaults = inputs[5 : 5 + len(tdense)]
    else:
        n_sparse, n_dense = node.attr["Nsparse"].i, node.attr["Ndense"].i
        sparse_keys = [_const_strings(nodes, r) for r in inputs[2 : 2 + n_sparse]]
        dense_keys = [
            _const_strings(nodes, r) for r in inputs[2 + n_sparse : 2 + n_sparse + n_dense]
        ]
        if any(k is None for k in sparse_keys + dense_keys):
            return None
        sparse_keys = [k[0] for k in sparse_keys]
        dense_keys = [k[0] for k in dense_keys]
        ragged_keys, ragged_types = [], []
        defaults = inputs[2 + n_sparse + n_dense : 2 + n_sparse + 2 * n_dense]
    if sparse_keys is None or dense_keys is None or ragged_keys is None:
        return None
    out: dict[str, ParsedFeature] = {}
    for key, dtype in zip(sparse_keys, sparse_types):
        out[key] = ParsedFeature(key, dtype, False)
    for key, dtype in zip(ragged_keys, ragged_types):
        out[key] = ParsedFeature(key, dtype, False)
    for key, dtype, default in zip(dense_keys, tdense, defaults):
        empty = _const_is_empty(nodes, default)
        out[key] = ParsedFeature(key, dtype, bool(empty) if empty is not None else False)
    return out


def _parsed_features(meta_graph, sig) -> dict[str, ParsedFeature] | None:
    """Features read by ParseExample ops that the signature's outputs depend on."""
    graph_nodes = {n.name: n for n in meta_graph.graph_def.node}
    library = {f.signature.name: f for f in meta_graph.graph_def.library.function}

    # Walk the graph back from the signature's outputs (TF1 graphs parse here).
    parse_sites = []  # (node, {name: node} of the graph or function holding it)
    functions: list[str] = []
    seen: set[str] = set()
    stack = [_node_name(t.name) for t in sig.outputs.values()]
    while stack:
        name = stack.pop()
        if name in seen or name not in graph_nodes:
            continue
        seen.add(name)
        node = graph_nodes[name]
        if node.op in _PARSE_OPS:
            parse_sites.append((node, graph_nodes))
        functions.extend(_called_functions(node))
        stack.extend(_node_name(i) for i in node.input)

    # TF2 models call functions; every function reachable from the walk counts.
    visited: set[str] = set()
    while functions:
        fname = functions.pop()
        if fname in visited or fname not in library:
            continue
        visited.add(fname)
        fn = library[fname]
        nodes = {n.name: n for n in fn.node_def}
        for node in fn.node_def:
            if node.op in _PARSE_OPS:
                parse_sites.append((node, nodes))
            functions.extend(_called_functions(node))

    if not parse_sites:
        return None
    features: dict[str, ParsedFeature] = {}
    for node, nodes in parse_sites:
        found = _features_of_parse_op(node, nodes)
        if found is None:
            return None
        for key, feat in found.items():
            prev = features.get(key)
            features[key] = (
                feat
                if prev is None
                else dataclasses.replace(prev, required=prev.required or feat.required)
            )
    return features


# --- matching a signature to an Arrow schema ------------------------------------

# The feature type whose values fill an input of a dtype family.
_DTYPE_FEATURE = {
    "float": arrow.FLOAT,
    "int": arrow.INT,
    "uint": arrow.INT,
    "bool": arrow.INT,
    "string": arrow.BYTES,
}


def _feature_type_for(dtype: str) -> str | None:
    for prefix, ft in _DTYPE_FEATURE.items():
        if dtype.startswith(prefix):
            return ft
    return None


def _takes_examples(sig: SignatureInfo, schema: pa.Schema) -> bool:
    if sig.kind in (CLASSIFY, REGRESS):
        return True
    if len(sig.inputs) != 1:
        return False
    (info,) = sig.inputs.values()
    if info.dtype != "string" or (info.shape is not None and len(info.shape) != 1):
        return False
    return sig.parsed_features is not None or info.key not in schema.names


def plan_inputs(sig: SignatureInfo, schema: pa.Schema, mode: str | None = None) -> InputPlan:
    """Checks the signature against the columns of ``schema``; returns how to feed it.

    ``mode`` forces ``examples`` or ``tensors``; by default a signature with a
    single rank-1 ``tf.string`` input that parses tf.Examples (or whose input is
    not a column) takes serialized examples, and any other takes named tensors.

    Raises:
      InputError: naming the input or feature that is missing from the schema,
        whose column type does not fit the input's dtype, or whose shape cannot
        be filled from fixed-length rows.
    """
    if mode is not None and mode not in INPUT_MODES:
        raise InputError(f"input mode must be one of {', '.join(INPUT_MODES)}, not {mode!r}")
    types = arrow.feature_types(schema)
    where = f"signature {sig.name!r} of {sig.model_path!r}"
    if mode is None:
        mode = EXAMPLES if _takes_examples(sig, schema) else TENSORS

    if mode == EXAMPLES:
        if len(sig.inputs) != 1:
            raise InputError(
                f"{where} has {len(sig.inputs)} inputs ({', '.join(sig.inputs)}); "
                "serialized tf.Examples feed a signature with one tf.string input"
            )
        (info,) = sig.inputs.values()
        if info.dtype != "string":
            raise InputError(
                f"{where}: input {info.key!r} is {info.dtype}; serialized tf.Examples need tf.string"
            )
        for feat in (sig.parsed_features or {}).values():
            have = types.get(feat.name)
            if have is None:
                if feat.required:
                    raise InputError(
                        f"{where} requires feature {feat.name!r} ({feat.dtype}), "
                        "which the input examples do not have"
                    )
                continue
            want = _feature_type_for(feat.dtype)
            if want != have:
                raise InputError(
                    f"{where} parses feature {feat.name!r} as {feat.dtype}, "
                    f"but the input column is {have}"
                )
        return InputPlan(EXAMPLES, examples_key=info.key)

    tensors = []
    for info in sig.inputs.values():
        have = types.get(info.key)
        if have is None:
            raise InputError(
                f"{where} takes input {info.key!r} ({info.dtype}), which the input examples do not have "
                f"(columns: {', '.join(schema.names)})"
            )
        want = _feature_type_for(info.dtype)
        if want is None:
            raise InputError(
                f"{where}: input {info.key!r} has dtype {info.dtype}, which Conveyor cannot feed"
            )
        if want != have:
            raise InputError(
                f"{where}: input {info.key!r} is {info.dtype}, but column {info.key!r} is {have} "
                f"(a {info.dtype} input needs a {want} column)"
            )
        if info.shape is None or len(info.shape) == 0:
            raise InputError(
                f"{where}: input {info.key!r} has no batch dimension (shape {info.shape}); "
                "Conveyor feeds inputs of shape [batch, ...]"
            )
        if any(d is None for d in info.shape[1:]):
            raise InputError(
                f"{where}: input {info.key!r} has shape {info.shape} with a free inner dimension; "
                "Conveyor feeds fixed-size rows"
            )
        tensors.append(info)
    return InputPlan(TENSORS, tensors=tuple(tensors))


def check_output_columns(sig: SignatureInfo, schema: pa.Schema, prefix: str) -> dict[str, str]:
    """``{output key: column name}`` for appended predictions; refuses name clashes."""
    cols = {key: f"{prefix}{key}" for key in sig.outputs}
    for key, col in cols.items():
        if col in schema.names:
            raise InputError(
                f"prediction column {col!r} (output {key!r} of signature {sig.name!r}) "
                "clashes with an input column; choose another prefix"
            )
    return cols
