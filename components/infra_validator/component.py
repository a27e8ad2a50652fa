"""The infra validation step as a function: :func:`run_infra_validator`.

``conveyor infra-validate`` and the
:class:`~conveyor.components.infra_validator.node.InfraValidator` pipeline
component both call it. It loads the SavedModel in a clean serving process
(:mod:`~conveyor.components.infra_validator.server`) and, given examples,
sends it requests; under ``output_dir`` (the InfraBlessing folder) it writes:

* ``INFRA_BLESSED`` or ``INFRA_NOT_BLESSED`` (TFX InfraValidator's markers),
  holding the reason as text;
* ``infra_validation.json``: the summary :func:`run_infra_validator` returns;
* ``server.log``: the serving process's standard error, of the last try.

There is no Beam pipeline: the work is one model in one process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from conveyor.beam_utils.errors import InputError
from conveyor.components.infra_validator import config
from conveyor.components.infra_validator.server import validate_once
from conveyor.dsl import layout

SUMMARY_FILE = "infra_validation.json"
SERVER_LOG = "server.log"


def request_examples(examples_uri: str, split: str, n: int) -> list[bytes]:
    """The first ``n`` serialized ``tf.Example`` of one split of an Examples directory.

    Raises:
      InputError: not an Examples directory, no such split, or a split without examples.
    """
    from conveyor.beam_utils import file_readers, files, tfrecord_io

    splits = layout.examples_splits(examples_uri)
    if split not in splits:
        raise InputError(f"{examples_uri}: no split {split!r} (splits: {sorted(splits)})")
    records: list[bytes] = []
    for path in files.match_files(splits[split]):
        with file_readers.open_binary(path) as f:
            for record in tfrecord_io.open_records(f, path):
                records.append(bytes(record))
                if len(records) == n:
                    return records
    if not records:
        raise InputError(f"{splits[split]}: split {split!r} has no examples to send")
    return records


def _has_saved_model(model_dir: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    return any(
        FileSystems.exists(FileSystems.join(model_dir, name))
        for name in ("saved_model.pb", "saved_model.pbtxt")
    )


def run_infra_validator(
    model: str,
    output_dir: str,
    *,
    examples: str | None = None,
    serving_spec=None,
    validation_spec=None,
    request_spec=None,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Loads a SavedModel in a clean serving process and queries it; blesses it or not.

    Args:
      model: a Model artifact's folder (its ``Format-Serving`` SavedModel is
        used) or a SavedModel folder.
      output_dir: the InfraBlessing folder (see the module docstring).
      examples: an Examples folder (``Split-<name>/`` of TFRecords of
        ``tf.Example``): LOAD_AND_QUERY, sending ``request_spec``'s
        ``num_examples`` examples of its ``split_name``, one a request, to each
        signature it names. None: LOAD_ONLY (the model must load, with
        ``serve`` tags).
      serving_spec: TFX's ``ServingSpec``; the local TensorFlow runtime
        (``{"local_tensorflow": {}}``, the default; TFX's
        ``tensorflow_serving`` maps to it). See
        :mod:`~conveyor.components.infra_validator.config`.
      validation_spec: TFX's ``ValidationSpec``:
        ``max_loading_time_seconds`` (default 300) bounds one try, loading and
        queries; ``num_tries`` (default 5) tries are made while the serving
        process times out or crashes. A model that fails to load, lacks a
        signature or fails a query fails the same way again: it is not tried again.
      request_spec: TFX's ``RequestSpec`` (``tensorflow_serving``'s ``tags``
        and ``signature_names``, ``split_name``, ``num_examples``); only with
        ``examples``.
      beam_args: Beam flags, for the filesystems' options (reading from ``gs://``...).

    Returns:
      the summary also written to ``infra_validation.json``: ``{"blessed": 1 or
      0, "reason", "mode", "model", "serving", "tags", "signature_names",
      "split", "num_examples", "tries": [{outcome, reason, seconds,
      loading_seconds}], "server": {pid, python, sys_path, cwd, tensorflow},
      "outputs": {signature: {output: {dtype, shape}}}}``. A model that does not
      serve is a summary with ``blessed`` 0, not an exception.

    Raises:
      PipelineDefinitionError: a spec field that is unknown or not supported.
      InputError: the model folder does not exist; the examples cannot be read.
    """
    from apache_beam.io.filesystems import FileSystems

    from conveyor.beam_utils import files

    serving = config.serving_spec(
        serving_spec if serving_spec is not None else {config.LOCAL_TENSORFLOW: {}}
    )
    validation = config.validation_spec(validation_spec)
    if request_spec is not None and examples is None:
        raise config.PipelineDefinitionError(
            "request_spec: needs examples to send (without examples the model is only loaded)"
        )
    request = config.request_spec(request_spec)
    if beam_args:
        from conveyor.beam_utils.options import pipeline_options

        FileSystems.set_options(pipeline_options(beam_args))

    # An object store has no folders: a model there is known by its files (checked below).
    if "://" not in model and not os.path.exists(model):
        raise InputError(f"{model}: no such model folder")
    model_dir = layout.serving_model_dir(model)
    if "://" not in model_dir:
        model_dir = os.path.abspath(model_dir)
    mode = config.LOAD_AND_QUERY if examples is not None else config.LOAD_ONLY
    records = (
        request_examples(examples, request.split_name, request.num_examples) if examples else []
    )
    summary = {
        "mode": mode,
        "model": model_dir,
        "serving": {
            "requested": serving.requested,
            "runtime": serving.runtime,
            "model_name": serving.model_name,
            "note": serving.note,
        },
        "tags": list(request.tags),
        "signature_names": list(request.signature_names) if examples else [],
        "split": request.split_name if examples else None,
        "num_examples": len(records),
        "max_loading_time_seconds": validation.max_loading_time_seconds,
        "num_tries": validation.num_tries,
    }
    tries, last = _validate(model_dir, request, records, validation, mode)
    blessed = last.outcome == "passed"
    started = last.event("started") or {}
    summary.update(
        blessed=int(blessed),
        reason=_reason(last, tries, summary) if blessed else _not_blessed(last, tries),
        tries=[t.to_json() for t in tries],
        server={k: started.get(k) for k in ("pid", "python", "sys_path", "cwd", "tensorflow")},
        outputs={e["signature"]: e["outputs"] for e in last.events if e.get("event") == "queried"},
    )
    _write(output_dir, summary, last.log, files)
    return summary


def _validate(model_dir, request, records, validation, mode):
    """Tries while the serving process times out or crashes; returns ``(tries, last)``."""
    import tempfile

    from conveyor.beam_utils import tfrecord_io

    tries = []
    if not _has_saved_model(model_dir):
        from conveyor.components.infra_validator.server import Try

        last = Try("failed", f"the model failed to load: no SavedModel in {model_dir}", 0.0)
        return [last], last
    with tempfile.TemporaryDirectory(prefix="conveyor-requests-") as tmp:
        requests_file = None
        if mode == config.LOAD_AND_QUERY:
            requests_file = os.path.join(tmp, "requests.tfrecord")
            tfrecord_io.write_records(requests_file, records, compress=False)
        for _ in range(validation.num_tries):
            last = validate_once(
                model_dir,
                request.tags,
                # LOAD_ONLY checks that the model loads, whatever its signatures.
                request.signature_names if requests_file else (),
                requests_file,
                validation.max_loading_time_seconds,
            )
            tries.append(last)
            if last.outcome in ("passed", "failed"):
                break
    return tries, last


def _reason(last, tries, summary) -> str:
    loaded = last.event("loaded")
    text = f"loaded in {loaded['seconds']:.1f} s with tags {summary['tags']}"
    if summary["mode"] == config.LOAD_ONLY:
        text += " (LOAD_ONLY: no examples given)"
    else:
        names = ", ".join(summary["signature_names"])
        text += (
            f"; {names} answered {summary['num_examples']} request(s) of split {summary['split']!r}"
        )
    if len(tries) > 1:
        text += f", on try {len(tries)} of {summary['num_tries']}"
    return text


def _not_blessed(last, tries) -> str:
    if len(tries) > 1:
        return f"{last.reason} (after {len(tries)} tries)"
    return last.reason


def _write(output_dir: str, summary: dict, log: str, files) -> None:
    from apache_beam.io.filesystems import FileSystems

    marker = layout.INFRA_BLESSED if summary["blessed"] else layout.INFRA_NOT_BLESSED
    other = layout.INFRA_NOT_BLESSED if summary["blessed"] else layout.INFRA_BLESSED
    stale = FileSystems.join(output_dir, other)
    if FileSystems.exists(stale):  # an earlier run's verdict must not stand beside this one
        FileSystems.delete([stale])
    files.write_text(FileSystems.join(output_dir, SERVER_LOG), log)
    files.write_text(
        FileSystems.join(output_dir, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n"
    )
    files.write_text(FileSystems.join(output_dir, marker), summary["reason"] + "\n")


def summary_line(summary: dict, output_dir: str) -> str:
    """The line ``conveyor infra-validate`` prints."""
    verdict = layout.INFRA_BLESSED if summary["blessed"] else layout.INFRA_NOT_BLESSED
    return f"{verdict}: {summary['reason']}; output in {output_dir}"
