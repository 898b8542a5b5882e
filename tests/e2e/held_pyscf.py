"""Test double around the real PySCF program: ``python held_pyscf.py input.json``.

It records its start (step folder and pid) in ``$SIESTAFLOW_TEST_GATE/starts.log``, waits
while ``$SIESTAFLOW_TEST_GATE/hold`` exists, then runs ``siestaflow_agent.engines.pyscf_run``
unchanged. So a test can keep a calculation running for as long as it needs (to cancel it,
stop the server or restart the agent meanwhile) and can count how often a step was started,
while PySCF still computes for real. Without the hold file it only adds the log line.
"""

import os
import sys
import time
from pathlib import Path

from siestaflow_agent.engines import pyscf_run

if __name__ == "__main__":
    gate = Path(os.environ["SIESTAFLOW_TEST_GATE"])
    with (gate / "starts.log").open("a") as log:
        log.write(f"{os.getcwd()} {os.getpid()}\n")
    while (gate / "hold").exists():
        time.sleep(0.05)
    sys.exit(pyscf_run.main())
