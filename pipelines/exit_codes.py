"""Exit codes of `kubetfx`, distinct so scripts and CI can tell outcomes apart."""
from kubetfx.components.example_gen.csv_input import InputError
from kubetfx.pipelines.config import ConfigError

OK = 0
CRASH = 1             # a stage failed unexpectedly; see the log
USAGE = 2             # bad flags, config or input data: fix and re-run
DATA_REJECTED = 3     # ExampleValidator found error anomalies (on_anomalies: fail)
NOT_BLESSED = 4       # the model did not pass Evaluator or InfraValidator: nothing pushed
BUSY = 5              # another run of this pipeline holds the home directory
TIMED_OUT = 6         # a task ran past its time limit (--task-timeout) and was stopped

# Errors a user can fix; reported as one line, without a stack trace.
UserError = (InputError, ConfigError)
