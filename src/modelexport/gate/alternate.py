"""The inference profiles of a pull request's head and base exports, taken side by side in
one process (``session.run_alternating``), run by the runner as it runs a worker.

    python -m modelexport.gate.alternate JOB.json RESULT.json STAGE PARENT_PID REPLY_FD

JOB: ``{"paths": [HEAD.onnx, BASE.onnx], "settings": {...}, "timeout_s": S}``. RESULT: the
``Latency`` of each, in that order (``{"latencies": [...]}``), or a ``Failed`` record. No
model code runs here: only onnxruntime, on the exports the workers left.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from modelexport.errors import describe
from modelexport.gate.latency import Latency
from modelexport.gate.records import Failed
from modelexport.gate.sandbox import die_with_parent
from modelexport.gate.worker import exit_with
from modelexport.inference.records import Settings


def profiles(job: dict[str, Any], stage_file: Path) -> dict[str, Any]:
    from modelexport import kvcache, onnxfile
    from modelexport.inference import session

    settings = Settings(**job["settings"])
    stage_file.write_text(f"inference {settings.runs} runs each, alternating")
    paths = [Path(p) for p in job["paths"]]
    phases = [kvcache.phases(onnxfile.read(path).inputs, settings.prompt_tokens,
                             settings.new_tokens) for path in paths]
    decoder = all(phases)
    found = session.run_alternating(paths, settings, job["timeout_s"],
                                    [one[kvcache.DECODE] for one in phases] if decoder else None)
    result: dict[str, Any] = {"latencies": [Latency.of(one).to_json() for one in found]}
    if decoder:  # the prefill too: time to first token
        first = session.run_alternating(paths, settings, job["timeout_s"],
                                        [one[kvcache.PREFILL] for one in phases])
        result["first_token"] = [Latency.of(one).to_json() for one in first]
    return result


def main(argv: list[str]) -> NoReturn:
    job_file, result_file, stage_file = Path(argv[0]), Path(argv[1]), Path(argv[2])
    die_with_parent(int(argv[3]))
    os.close(int(argv[4]))  # nothing to answer: the result says it all
    logging.basicConfig(level=logging.ERROR)
    try:
        result = profiles(json.loads(job_file.read_text()), stage_file)
    except Exception as exc:  # this model's failure, in its own words
        result = Failed(f"inference profile: {describe(exc)}"[:2000]).to_json()
    exit_with(result_file, result)


if __name__ == "__main__":
    main(sys.argv[1:])
