"""The release pipeline: data -> train -> version -> build -> publish -> verify.

Each step is a module of plain functions in steps/; ``python -m pipeline`` is the thin
command line over them that the Makefile calls, one module per command in commands/.
indexes/ holds the index clients, views/ what make versions, diff and channels show,
package/ the model package's name and own modules.
"""

import sys
from pathlib import Path

# The pipeline judges builds by the package's own contract (mymodel.contract), read
# from this checkout's src/ so that `python -m pipeline` needs no install of it.
_SRC = str(Path(__file__).resolve().parent.parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
