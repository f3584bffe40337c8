"""Run a documented Python block as the user would: as a script, in its own interpreter.

Why not ``exec`` in a worker thread: a doc's script never closes its client (a script's process
exit does that), and inside the test process the client then sits in a reference cycle until
some later garbage collection finds its socket still open. Under ``filterwarnings = error`` that
``ResourceWarning`` failed whichever test the collection happened to land in, minutes later.
A process of its own runs the block exactly as written and takes its sockets with it.
"""

from __future__ import annotations

import asyncio
import sys


async def run_script(code: str, *, name: str, timeout: float = 60.0) -> str:
    """Run ``code`` with this interpreter (so the same installed SDKs); its standard output.

    Fails the test with the script's standard error when it exits non-zero or runs past
    ``timeout`` seconds (it is killed then).
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(code.encode()), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{name} ran for more than {timeout} s") from None
    assert process.returncode == 0, f"{name} exited with {process.returncode}:\n{err.decode()}"
    return out.decode()
