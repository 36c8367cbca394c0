"""One bot process for the cross-process fairness tests: its own event loop and JobQueue
(the in-process backend, the toy methods), its settings from STYLEBOT_* variables, so
STYLEBOT_ADMISSION=ray and STYLEBOT_RAY_ADDRESS join the shared admission.

Driven by JSON lines on stdin, answering JSON lines on stdout:
  {"submit": user, "tag": t, "wait": bool, "side": n}  ->  {"queued": t} or {"refused": message}
  {"open": true}   opens this process's toy gate (jobs submitted with wait block on it)
  {"quit": true}   stops the queue and exits
and telling {"ready": true} once started, {"started": t} and {"ended": t, "as": event} as
jobs go. The method itself appends each job's tag to the file named by argv[1] as it runs
(under the admission's turn), so the file holds one run order across processes.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

RUN_LOG = Path(sys.argv[1]) if __name__ == "__main__" else None
# The toys keep their gate in files under STYLEBOT_TOY_STATE, inherited from the test that
# started this process: each bot process needs a gate of its own.
os.environ.pop("STYLEBOT_TOY_STATE", None)

from engine import methods
from engine.backends.inprocess import InProcessBackend
from engine.engine import StyleEngine
from engine.errors import UserError
from engine.events import Started, is_final
from engine.queue import JobQueue
from engine.request import ImageUpload, Requester, StyleRequest
from engine.settings import EngineSettings
from tests.engine import toy_methods



class LoggedToy(toy_methods.ToyInvert):
    """The toy inverter, writing down the jobs it runs."""

    def run_batch(self, inputs, ctx):
        with RUN_LOG.open("a") as log:
            log.writelines(inp.options["tag"] + "\n" for inp in inputs)
        return super().run_batch(inputs, ctx)


methods.METHOD_PATHS["toy"] = "__main__:LoggedToy"


def say(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def png(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def main() -> None:
    engine = StyleEngine(EngineSettings(device="cpu"), device="cpu")
    queue = JobQueue(engine, backend=InProcessBackend(engine))  # __main__'s toy: not in a child

    async def record(job, event) -> None:
        tag = job.prepared.options["tag"]
        if isinstance(event, Started):
            say(started=tag)
        elif is_final(event):
            say(ended=tag, **{"as": type(event).__name__})

    queue.observers.append(record)
    toy_methods.GATE.clear()
    await queue.start()
    say(ready=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command = json.loads(line or '{"quit": true}')
        if "submit" in command:
            request = StyleRequest(method="toy", content=ImageUpload(png(command.get("side", 16)), "c.png"),
                                   requester=Requester("test", command["submit"]),
                                   options={"tag": command["tag"], "wait": command.get("wait", False)})
            try:
                await queue.submit(request)
                say(queued=command["tag"])
            except UserError as refusal:
                say(refused=refusal.message)
        elif command.get("open"):
            toy_methods.GATE.set()
        elif command.get("quit"):
            toy_methods.GATE.set()
            await queue.stop(grace_s=5)
            say(stopped=True)
            return


if __name__ == "__main__":
    asyncio.run(main())
