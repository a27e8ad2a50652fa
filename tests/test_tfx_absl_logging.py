"""A TFX pipeline file's ``import absl`` then ``absl.logging.set_verbosity(absl.logging.INFO)``
works after ``from conveyor import tfx`` alone, as after importing TFX (which loads
absl.logging), and importing it still loads neither TensorFlow nor Beam."""

import subprocess
import sys

SCRIPT = """
import sys
import absl
from conveyor import tfx
absl.logging.set_verbosity(absl.logging.INFO)
print(absl.logging.get_verbosity() == absl.logging.INFO,
      [m for m in ("tensorflow", "apache_beam") if m in sys.modules])
"""


def test_absl_logging_is_usable_after_importing_conveyor_tfx():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[0] == "True []"
